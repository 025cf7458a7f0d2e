package identity

import (
	"fmt"
	"slices"

	"steward/internal/policy"
)

// Age checks, as the policy's registration.age_check names them.
const (
	ageCheckDateOfBirth  = string(policy.AgeDateOfBirth)
	ageCheckConfirmation = string(policy.AgeConfirmation)
	ageCheckNone         = string(policy.AgeNone)
)

// registration is what the policy says about sign-up and accounts,
// resolved once at start.
type registration struct {
	fields     []string        // accepted at sign-up, in the policy's order; email always included
	profile    []string        // every account field the policy declares: fields, then the others
	accepted   map[string]bool // the same, as a set
	required   map[string]bool
	ageCheck   string
	minAge     int
	categories map[string]string // field → category, for sealing
	selfEdit   map[string]bool
}

// readRegistration resolves the policy's registration rules and refuses
// what accounts cannot honour: a field Steward has no column for, a field
// the policy does not place in a category (nothing could say how long it
// is kept), a sensitive field that the schema stores in plain, an age
// check by date of birth without the field.
func readRegistration(p *policy.Policy) (registration, error) {
	r := registration{
		accepted: map[string]bool{}, required: map[string]bool{},
		categories: map[string]string{}, selfEdit: map[string]bool{},
		ageCheck: string(p.Registration.AgeCheck), minAge: p.MinimumAge,
	}
	fields := append([]string(nil), p.Registration.Fields...)
	if !slices.Contains(fields, FieldEmail) {
		// Accounts are found, verified and recovered by email; the
		// policy must say it collects the address.
		return registration{}, fmt.Errorf("identity: the policy's registration.fields must include email: accounts sign in with it")
	}
	for _, f := range fields {
		if f == FieldPassword {
			continue // the password is not a form field here; it is always asked
		}
		spec, ok := supported[f]
		if !ok {
			return registration{}, fmt.Errorf("identity: the policy's registration field %q is not one Steward accounts can hold (supported: %v)", f, SupportedFields())
		}
		cat := p.CategoryOfField(f)
		if cat == "" {
			return registration{}, fmt.Errorf("identity: the policy's registration field %q belongs to no category", f)
		}
		if p.IsSensitiveField(f) && !spec.sealed {
			return registration{}, fmt.Errorf("identity: the policy marks %q sensitive, but accounts store it unencrypted; only phone, billing_address and date_of_birth are sealed", f)
		}
		if r.accepted[f] {
			continue
		}
		r.accepted[f] = true
		r.fields = append(r.fields, f)
		r.categories[f] = cat
		r.selfEdit[f] = p.SelfEditable(f)
	}
	// Fields the policy declares but does not ask at sign-up (Mixi's
	// phone) are still part of the account: the owner may add them in the
	// profile when the policy lets them edit the field.
	r.profile = append([]string(nil), r.fields...)
	for _, f := range SupportedFields() {
		cat := p.CategoryOfField(f)
		if r.accepted[f] || cat == "" {
			continue
		}
		if p.IsSensitiveField(f) && !supported[f].sealed {
			return registration{}, fmt.Errorf("identity: the policy marks %q sensitive, but accounts store it unencrypted; only phone, billing_address and date_of_birth are sealed", f)
		}
		r.profile = append(r.profile, f)
		r.categories[f] = cat
		r.selfEdit[f] = p.SelfEditable(f)
	}
	for _, f := range p.Registration.Required {
		if f == FieldPassword {
			continue
		}
		if !r.accepted[f] {
			return registration{}, fmt.Errorf("identity: the policy requires %q at sign-up but does not accept it", f)
		}
		r.required[f] = true
	}
	r.required[FieldEmail] = true
	switch r.ageCheck {
	case "", ageCheckNone:
		r.ageCheck = ageCheckNone
	case ageCheckDateOfBirth:
		if !r.accepted[FieldDateOfBirth] {
			return registration{}, fmt.Errorf("identity: the policy checks age by date_of_birth but does not accept that field at sign-up")
		}
		r.required[FieldDateOfBirth] = true
	case ageCheckConfirmation:
	default:
		return registration{}, fmt.Errorf("identity: unknown age_check %q", r.ageCheck)
	}
	return r, nil
}

func (r registration) declared(field string) bool { return r.accepted[field] }

// categoryOf returns the category whose key seals field.
func (r registration) categoryOf(field string) string { return r.categories[field] }

func (r registration) editable(field string) bool { return r.selfEdit[field] }

// profileFields are the fields a profile shows: every account field the
// policy declares.
func (r registration) profileFields() []string { return r.profile }
