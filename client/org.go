package client

import (
	"errors"
	"fmt"

	"github.com/tillit-sts/tillit/helseid"
)

// Tenancy is how a client configuration names the organisation it acts for
// (profile §6.1). It is fixed when the client is registered.
type Tenancy string

const (
	// SingleTenant clients belong to one organisation, which HelseID fills
	// in as orgnr_parent by itself; a request may name one of its child
	// organisations. The zero Tenancy means SingleTenant.
	SingleTenant Tenancy = helseid.TenancySingle
	// MultiTenant clients serve many organisations and must name, in every
	// token request, the one they act for (and optionally its child).
	MultiTenant Tenancy = helseid.TenancyMulti
)

// Organization is the organisation a token request acts for. Supplier is
// for tokens to say; a request that sets it is refused.
type Organization = helseid.Organization

// orgIsZero reports whether o names no organisation.
func orgIsZero(o Organization) bool { return o.Parent == "" && o.Child == "" && o.Supplier == "" }

// checkOrg validates o for a client of tenancy t, before anything is sent,
// so that a typo fails here and not as a HID code from the server.
func checkOrg(o Organization, t Tenancy) error {
	if o.Supplier != "" {
		return errors.New("client: the supplier organisation is for tokens to say; a request names only parent and child")
	}
	if o.Parent != "" && !helseid.ValidOrgNumber(o.Parent) {
		return fmt.Errorf("client: parent organisation %q is not a valid organisation number", o.Parent)
	}
	if o.Child != "" && !helseid.ValidOrgNumber(o.Child) {
		return fmt.Errorf("client: child organisation %q is not a valid organisation number", o.Child)
	}
	switch t {
	case SingleTenant:
		if o.Parent != "" {
			return errors.New("client: a single-tenant client's parent organisation is fixed by its registration; name only a child")
		}
	case MultiTenant:
		if o.Parent == "" && o.Child != "" {
			return errors.New("client: a multi-tenant client must name the parent of the child organisation")
		}
	default:
		return fmt.Errorf("client: unknown tenancy %q", t)
	}
	return nil
}

// detail renders o as the helseid_authorization entry NHN's libraries write
// for a client of tenancy t: a single-tenant child by its bare number
// (system 2.16.578.1.12.4.1.4.101), a multi-tenant organisation as
// "NO:ORGNR:<parent>:<child>" (system 1.0.6523, trailing colon without a
// child). A single-tenant client without a child sends no entry: its
// organisation is implicit. nil, nil means no entry.
func orgDetail(o Organization, t Tenancy) (helseid.Detail, error) {
	if err := checkOrg(o, t); err != nil {
		return nil, err
	}
	switch {
	case t == MultiTenant && o.Parent != "":
		return helseid.NewMultiTenantOrganization(o.Parent, o.Child)
	case t == SingleTenant && o.Child != "":
		return helseid.NewChildOrganization(o.Child)
	}
	return nil, nil
}
