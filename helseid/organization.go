package helseid

// Organization names an organisation by its organisation numbers (nine
// digits, Enhetsregisteret): the one a client asks to act for, and the one
// an access token says it acts for (orgnr_parent, orgnr_child,
// orgnr_supplier).
type Organization struct {
	// Parent is the legal entity. A single-tenant client leaves it empty
	// in its requests: its parent is fixed by its registration, and
	// naming another one is refused (HID-1005).
	Parent string `json:"parent,omitempty"`
	// Child is the sub-unit (underenhet), if any.
	Child string `json:"child,omitempty"`
	// Supplier is, in a multi-tenant client's token when the API asks for
	// it, the supplier the organisation delegated to. The STS fills it in;
	// a token request leaves it empty.
	Supplier string `json:"supplier,omitempty"`
}
