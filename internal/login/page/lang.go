package page

import (
	"net/http"
	"strconv"
	"strings"
)

// Lang is a page language.
type Lang string

// The languages the pages are written in. Bokmål is the default, as
// HelseID's nb-no is.
const (
	Norwegian Lang = "nb"
	English   Lang = "en"
)

// Langs lists the page languages, the default first.
var Langs = []Lang{Norwegian, English}

// Bounds on what language negotiation reads, so that a hostile header costs
// nothing.
const (
	maxLangHeader = 1024
	maxLangTags   = 20
)

// Negotiate picks the page language: the first supported tag of uiLocales
// (the OIDC ui_locales parameter, space-separated BCP 47 tags, such as
// HelseID's "nb-no" or "en-us"), else the supported tag the browser's
// Accept-Language rates highest, else Norwegian. Norwegian tags of every
// written form (no, nb, nn) give bokmål, the only Norwegian text there is.
func Negotiate(uiLocales string, r *http.Request) Lang {
	if len(uiLocales) <= maxLangHeader {
		for i, tag := range strings.Fields(uiLocales) {
			if i == maxLangTags {
				break
			}
			if l, ok := match(tag); ok {
				return l
			}
		}
	}
	if r != nil {
		if l, ok := fromAcceptLanguage(r.Header.Get("Accept-Language")); ok {
			return l
		}
	}
	return Norwegian
}

// match maps a BCP 47 tag to a page language by its primary subtag.
func match(tag string) (Lang, bool) {
	primary, _, _ := strings.Cut(tag, "-")
	primary, _, _ = strings.Cut(primary, "_")
	switch strings.ToLower(primary) {
	case "nb", "no", "nn":
		return Norwegian, true
	case "en":
		return English, true
	}
	return "", false
}

// fromAcceptLanguage returns the supported language with the highest
// quality in an Accept-Language header (RFC 9110 §12.5.4); on equal
// quality the earlier wins. A quality of 0 means "not this one".
func fromAcceptLanguage(h string) (Lang, bool) {
	if h == "" || len(h) > maxLangHeader {
		return "", false
	}
	var best Lang
	bestQ := 0.0
	for i, part := range strings.Split(h, ",") {
		if i == maxLangTags {
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		l, ok := match(strings.TrimSpace(tag))
		if ok && q > bestQ {
			best, bestQ = l, q
		}
	}
	return best, bestQ > 0
}
