package policy

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // sites name IANA zones; check them the same on every machine
)

// maxCategories bounds the categories a policy may declare: the guard keeps
// a purpose's categories in one 64-bit mask.
const maxCategories = 64

// Check returns every problem of the policy: references to undeclared
// categories or purposes, missing bases, notices, interests and
// retention, misplaced payment data, and contradictions with the
// policy's own promises. Parse runs it; a parsed policy has none.
func (p *Policy) Check() []Problem {
	c := &checker{p: p}
	c.controller()
	c.header()
	c.categories()
	c.registration()
	c.purposes()
	c.recipients()
	c.transfers()
	c.stores()
	c.rights()
	c.verification()
	c.changes()
	c.cookies()
	c.promises()
	c.statements()
	c.analytics()
	c.sites()
	c.newsletters()
	c.staff()
	c.identityProviders()
	c.clients()
	return c.probs
}

type checker struct {
	p     *Policy
	probs []Problem
}

// where finds the position of path, or of its nearest ancestor.
func (c *checker) where(path string) pos {
	for {
		if ps, ok := c.p.at[path]; ok {
			return ps
		}
		if path == "" {
			return pos{line: 1}
		}
		if i := strings.LastIndexAny(path, ".["); i >= 0 {
			path = path[:i]
		} else {
			path = ""
		}
	}
}

func (c *checker) add(path, msg, fix string) {
	if c.p.bad[path] {
		return // the value could not be read; its decode problem says why
	}
	ps := c.where(path)
	c.probs = append(c.probs, Problem{File: c.p.file, Line: ps.line, Column: ps.col, Path: path, Message: msg, Fix: fix})
}

func (c *checker) has(path string) bool {
	_, ok := c.p.at[path]
	return ok
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

func (c *checker) categoryIDs() []string {
	ids := make([]string, 0, len(c.p.categories))
	for _, cat := range c.p.categories {
		ids = append(ids, cat.ID)
	}
	return ids
}

func (c *checker) purposeIDs() []string {
	ids := make([]string, 0, len(c.p.purposes))
	for _, pu := range c.p.purposes {
		ids = append(ids, pu.ID)
	}
	return ids
}

// unknownFix suggests the closest of the declared names.
func unknownFix(got, kind string, have []string) string {
	if best := closest(got, have); best != "" {
		return fmt.Sprintf("did you mean %q? or declare %s %q", best, kind, got)
	}
	if len(have) == 0 {
		return fmt.Sprintf("declare %s %q", kind, got)
	}
	return fmt.Sprintf("use one of %s, or declare %s %q", strings.Join(have, ", "), kind, got)
}

// checkCategoryRef reports a reference to an undeclared category.
func (c *checker) checkCategoryRef(path, id, by string) bool {
	if c.p.catByID[id] != nil {
		return true
	}
	c.add(path, fmt.Sprintf("%s names category %q, which the policy does not declare", by, id), unknownFix(id, "category", c.categoryIDs()))
	return false
}

// checkPurposeRef reports a reference to an undeclared purpose.
func (c *checker) checkPurposeRef(path, id, by string) bool {
	if c.p.purByID[id] != nil {
		return true
	}
	c.add(path, fmt.Sprintf("%s names purpose %q, which the policy does not declare", by, id), unknownFix(id, "purpose", c.purposeIDs()))
	return false
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

func (c *checker) controller() {
	ct := c.p.Controller
	if ct.Name == "" {
		c.add("controller.name", "controller.name is missing", "name the organisation responsible for the data")
	}
	switch {
	case ct.Contact == "":
		c.add("controller.contact", "controller.contact is missing", "give the email address that answers privacy questions, e.g. contact: privacy@example.org")
	case !validEmail(ct.Contact):
		c.add("controller.contact", fmt.Sprintf("controller.contact %q is not an email address", ct.Contact), "write a plain address such as privacy@example.org")
	}
	if ct.DPO != "" && strings.Contains(ct.DPO, "@") && !validEmail(ct.DPO) {
		c.add("controller.dpo", fmt.Sprintf("controller.dpo %q is not a valid email address", ct.DPO), "write a plain address, or the officer's name")
	}
	if ct.Authority.Name == "" {
		c.add("controller.authority", "controller.authority.name is missing: the notice must say where subjects can complain", "name the supervisory authority under controller.authority.name and say how to complain under complaint:")
	}
	if u := ct.Authority.URL; u != "" && !validHTTPURL(u) {
		c.add("controller.authority.url", fmt.Sprintf("controller.authority.url %q is not an http(s) URL", u), "write a full URL such as https://example.org/complaints")
	}
	if u := ct.Website; u != "" && !validHTTPURL(u) {
		c.add("controller.website", fmt.Sprintf("controller.website %q is not an http(s) URL", u), "write a full URL such as https://example.org")
	}
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func (c *checker) header() {
	p := c.p
	switch {
	case p.Version == "":
		c.add("version", "version is missing", "write the effective date, e.g. version: 2026-11-01")
	case p.effective.IsZero():
		c.add("version", fmt.Sprintf("version %q is not a date", p.Version), "write the effective date as YYYY-MM-DD, e.g. 2026-11-01")
	}
	switch {
	case !c.has("minimum_age"):
		c.add("minimum_age", "minimum_age is missing", "write the youngest age the service is for, e.g. minimum_age: 16")
	case p.MinimumAge < 13 || p.MinimumAge > 120:
		c.add("minimum_age", fmt.Sprintf("minimum_age %d is outside 13 to 120", p.MinimumAge), "no service may collect data of children under 13; write 13, 16 or 18")
	}
}

func (c *checker) categories() {
	p := c.p
	if len(p.categories) == 0 {
		c.add("categories", "the policy declares no categories of data", "declare at least one category under categories:, e.g. identity: {description: ..., fields: [name, email]}")
		return
	}
	if len(p.categories) > maxCategories {
		c.add("categories", fmt.Sprintf("the policy declares %d categories; at most %d are supported", len(p.categories), maxCategories), "group related fields into fewer categories")
	}
	known := KnownFields()
	owner := map[string]string{}
	for _, cat := range p.categories {
		base := "categories." + cat.ID
		if !idRE.MatchString(cat.ID) {
			c.add(base, fmt.Sprintf("category id %q must be lower-case letters, digits and single hyphens", cat.ID), "rename it, e.g. consent-record")
		}
		if strings.TrimSpace(cat.Description) == "" {
			c.add(base, fmt.Sprintf("category %s has no description", cat.ID), "add description: saying in plain words what this data is; the notice shows it")
		}
		if len(cat.Fields) == 0 {
			c.add(base, fmt.Sprintf("category %s declares no fields", cat.ID), "list the fields it holds under fields:, from: "+strings.Join(known, ", "))
		}
		seen := map[string]bool{}
		for i, f := range cat.Fields {
			fp := fmt.Sprintf("%s.fields[%d]", base, i)
			switch {
			case !slices.Contains(known, f):
				fix := "use one of: " + strings.Join(known, ", ")
				if best := closest(f, known); best != "" {
					fix = fmt.Sprintf("did you mean %q?", best)
				}
				c.add(fp, fmt.Sprintf("category %s names field %q, which Steward does not store", cat.ID, f), fix)
			case seen[f]:
				c.add(fp, fmt.Sprintf("category %s lists field %s twice", cat.ID, f), "remove one")
			case owner[f] != "":
				c.add(fp, fmt.Sprintf("field %s is in category %s and again in %s; a field belongs to one category", f, owner[f], cat.ID), "remove it from one of the two")
			}
			seen[f] = true
			if owner[f] == "" {
				owner[f] = cat.ID
			}
			if (f == "card_token" || f == "card_brand" || f == "card_last4") && !cat.Payment {
				c.add(fp, fmt.Sprintf("field %s is payment data but category %s is not marked payment", f, cat.ID), fmt.Sprintf("add payment: true to category %s (only the payment purpose may then read it), or move the field to the payment category", cat.ID))
			}
		}
		for i, f := range cat.SelfEditable {
			if !slices.Contains(cat.Fields, f) {
				c.add(fmt.Sprintf("%s.self_editable[%d]", base, i), fmt.Sprintf("self_editable names %q, which is not a field of category %s", f, cat.ID), fmt.Sprintf("add %s to fields: of %s, or remove it here", f, cat.ID))
			}
		}
		for i, f := range cat.Sensitive {
			if !slices.Contains(cat.Fields, f) {
				c.add(fmt.Sprintf("%s.sensitive[%d]", base, i), fmt.Sprintf("sensitive names %q, which is not a field of category %s", f, cat.ID), fmt.Sprintf("add %s to fields: of %s, or remove it here", f, cat.ID))
			}
		}
		if len(cat.Source) == 0 {
			c.add(base, fmt.Sprintf("category %s does not say where the data comes from", cat.ID), "add source:, e.g. [subject] for what people give, [observed] for what is recorded, [ip] for IP-derived location")
		}
		for i, s := range cat.Source {
			if !validSource(s) {
				c.add(fmt.Sprintf("%s.source[%d]", base, i), fmt.Sprintf("category %s has unknown source %q", cat.ID, s), "use subject, form, import:NAME (e.g. import:seminar), third-party, public, observed, ip or derived")
			}
		}
		locFields := 0
		for _, f := range cat.Fields {
			if f == "country" || f == "region" || f == "city" {
				locFields++
			}
		}
		if cat.Granularity != "" {
			switch cat.Granularity {
			case GranularityNone, GranularityCountry, GranularityRegion, GranularityCity:
			default:
				c.add(base+".granularity", fmt.Sprintf("category %s has unknown granularity %q", cat.ID, cat.Granularity), "use none, country, region or city")
			}
			if locFields == 0 {
				c.add(base+".granularity", fmt.Sprintf("category %s sets a granularity but holds no location fields (country, region, city)", cat.ID), "remove granularity:, or add the location fields")
			}
			for i, f := range cat.Fields {
				if (f == "country" || f == "region" || f == "city") && Granularity(f).rank() > cat.Granularity.rank() {
					c.add(fmt.Sprintf("%s.fields[%d]", base, i), fmt.Sprintf("category %s declares field %s, finer than its granularity %s", cat.ID, f, cat.Granularity), fmt.Sprintf("remove %s, or raise granularity to %s", f, f))
				}
			}
		}
		if c.has(base+".legal_obligation") && strings.TrimSpace(cat.LegalObligation) == "" {
			c.add(base+".legal_obligation", fmt.Sprintf("category %s is kept for a legal obligation but does not say which", cat.ID),
				"say in words which law obliges you to keep it and for how long, e.g. legal_obligation: Tax law obliges us to keep invoices for ten years")
		}
		if cat.LegalObligation != "" && cat.Retention.Kind == RetainAccountLifetime && cat.Retention.Period.IsZero() {
			c.add("retention."+cat.ID, fmt.Sprintf("category %s is kept for a legal obligation, but its retention ends with the account", cat.ID),
				fmt.Sprintf("give the period the law sets, e.g. \"%s: 10 years\" or \"%s: account-lifetime + 10 years\"", cat.ID, cat.ID))
		}
		if cat.LegalObligation != "" && cat.Retention.Kind == RetainArchive {
			c.add(base+".legal_obligation", fmt.Sprintf("category %s is kept both as archive and for a legal obligation", cat.ID),
				"keep one reason: remove legal_obligation:, or give the category the retention period the law sets")
		}
		if cat.LinkToAccount && !slices.ContainsFunc(cat.Fields, isActivityField) {
			c.add(base+".link_to_account", fmt.Sprintf("category %s sets link_to_account but holds no activity fields", cat.ID), "remove link_to_account:, it applies to page views and other activity")
		}
		if !cat.Retention.IsSet() {
			fix := fmt.Sprintf("add \"%s: 13 months\" (or account-lifetime, archive) under retention:", cat.ID)
			c.add(base, fmt.Sprintf("category %s has no retention rule", cat.ID), fix)
		}
		used := false
		for _, pu := range p.purposes {
			if !pu.Builtin && slices.Contains(pu.Uses, cat.ID) {
				used = true
				break
			}
		}
		if !used {
			c.add(base, fmt.Sprintf("category %s is not used by any purpose: data without a purpose may not be collected", cat.ID), fmt.Sprintf("add %s to the uses: of the purpose it serves, or remove the category", cat.ID))
		}
	}
	for id := range p.retention {
		if p.catByID[id] == nil {
			c.add("retention."+id, fmt.Sprintf("retention names category %q, which the policy does not declare", id), unknownFix(id, "category", c.categoryIDs()))
		}
	}
}

func isActivityField(f string) bool {
	switch f {
	case "page", "referrer", "search_terms", "view_time", "outbound_link", "asset_interaction", "event":
		return true
	}
	return false
}

func (c *checker) registration() {
	r := c.p.Registration
	for i, f := range r.Fields {
		if c.p.CategoryOfField(f) == "" {
			c.add(fmt.Sprintf("registration.fields[%d]", i), fmt.Sprintf("registration field %q belongs to no category", f), fmt.Sprintf("add %s to the fields: of a category, or remove it from registration", f))
		}
	}
	if len(r.Fields) > 0 {
		for _, need := range []string{"email", "password"} {
			if !slices.Contains(r.Fields, need) {
				c.add("registration.fields", fmt.Sprintf("registration does not accept %s, which sign-in needs", need), "add "+need+" to registration.fields and registration.required")
			} else if !slices.Contains(r.Required, need) {
				c.add("registration.required", fmt.Sprintf("registration does not require %s, which sign-in needs", need), "add "+need+" to registration.required")
			}
		}
	}
	for i, f := range r.Required {
		if !slices.Contains(r.Fields, f) {
			c.add(fmt.Sprintf("registration.required[%d]", i), fmt.Sprintf("registration requires %q but does not accept it", f), "add "+f+" to registration.fields")
		}
	}
	switch r.AgeCheck {
	case AgeConfirmation, AgeNone:
	case AgeDateOfBirth:
		if !slices.Contains(r.Fields, "date_of_birth") {
			c.add("registration.age_check", "age_check is date_of_birth but registration does not accept date_of_birth", "add date_of_birth to registration.fields (and to a category), or use age_check: confirmation")
		}
	default:
		c.add("registration.age_check", fmt.Sprintf("unknown age_check %q", r.AgeCheck), "use date_of_birth, confirmation or none")
	}
}

func (c *checker) purposes() {
	p := c.p
	if len(p.declared) == 0 {
		c.add("purposes", "the policy declares no purposes", "declare why the data is used under purposes:, each with a basis and the categories it uses")
	}
	for _, pu := range p.declared {
		base := "purposes." + pu.ID
		if IsBuiltin(pu.ID) {
			c.add(base, fmt.Sprintf("purpose %s is built in and cannot be declared", pu.ID), "remove it; every policy has subject-request, security, legal-claims and storage")
			continue
		}
		if pu.ID == DirectMarketing {
			c.add(base, fmt.Sprintf("purpose id %s is reserved (an objection under it stops all direct marketing)", pu.ID), "name the purpose marketing, newsletter or similar, and set direct_marketing: true")
			continue
		}
		if !idRE.MatchString(pu.ID) {
			c.add(base, fmt.Sprintf("purpose id %q must be lower-case letters, digits and single hyphens", pu.ID), "rename it, e.g. provide-service")
		}
		if strings.TrimSpace(pu.Description) == "" {
			c.add(base, fmt.Sprintf("purpose %s has no description", pu.ID), "add description: saying in plain words what the data is used for")
		}
		switch pu.Basis {
		case "":
			c.add(base, fmt.Sprintf("purpose %s has no basis", pu.ID), "add basis: one of consent, contract, legitimate-interest, legal-obligation, vital-interest, public-task")
		case BasisConsent, BasisContract, BasisLegitimateInterest, BasisLegalObligation, BasisVitalInterest, BasisPublicTask:
		default:
			c.add(base+".basis", fmt.Sprintf("purpose %s has unknown basis %q", pu.ID, pu.Basis), "use consent, contract, legitimate-interest, legal-obligation, vital-interest or public-task")
		}
		if pu.Basis == BasisConsent && strings.TrimSpace(pu.Notice) == "" {
			c.add(base, fmt.Sprintf("purpose %s is based on consent but has no notice", pu.ID), "add notice: with the text people see when they are asked to consent")
		}
		if pu.Basis == BasisLegitimateInterest && strings.TrimSpace(pu.Interest) == "" {
			c.add(base, fmt.Sprintf("purpose %s is based on legitimate interest but does not state the interest", pu.ID), "add interest: saying what legitimate interest the use serves")
		}
		if len(pu.Uses) == 0 {
			c.add(base, fmt.Sprintf("purpose %s uses no categories", pu.ID), "list the categories it may read under uses:")
		}
		seen := map[string]bool{}
		for i, id := range pu.Uses {
			up := fmt.Sprintf("%s.uses[%d]", base, i)
			if seen[id] {
				c.add(up, fmt.Sprintf("purpose %s lists category %s twice", pu.ID, id), "remove one")
				continue
			}
			seen[id] = true
			if !c.checkCategoryRef(up, id, "purpose "+pu.ID) {
				continue
			}
			if p.catByID[id].Payment && pu.ID != PaymentPurpose {
				c.add(up, fmt.Sprintf("purpose %s uses payment category %s, but payment data may be used only to take payment", pu.ID, id), fmt.Sprintf("remove %s from %s; only the purpose payment (and the subject's own requests) may read it", id, pu.ID))
			}
		}
		if (pu.SaleOrShare || pu.ThirdPartyMarketing) && pu.Basis != BasisConsent && pu.Basis != "" {
			c.add(base+".basis", fmt.Sprintf("purpose %s sells, shares or markets for third parties but its basis is %s", pu.ID, pu.Basis), "make it basis: consent, with a notice")
		}
	}
}

func (c *checker) recipients() {
	p := c.p
	ids := map[string]bool{}
	for i, r := range p.Recipients {
		base := fmt.Sprintf("recipients[%d]", i)
		name := r.ID
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
			c.add(base, fmt.Sprintf("recipient %s has no id", name), "add id: a short lower-case name, e.g. hosting")
		} else if !idRE.MatchString(r.ID) {
			c.add(base+".id", fmt.Sprintf("recipient id %q must be lower-case letters, digits and single hyphens", r.ID), "rename it")
		} else if ids[r.ID] {
			c.add(base+".id", fmt.Sprintf("recipient %s is declared twice", r.ID), "give each recipient its own id")
		}
		ids[r.ID] = true
		if r.Name == "" {
			c.add(base, fmt.Sprintf("recipient %s has no name", name), "add name: who receives the data, as the notice should show it")
		}
		switch r.Role {
		case RoleProcessor, RolePartner, RoleAuthority, RoleAcquirer, RoleController:
		case "":
			c.add(base, fmt.Sprintf("recipient %s has no role", name), "add role: processor, partner, authority, acquirer or controller")
		default:
			c.add(base+".role", fmt.Sprintf("recipient %s has unknown role %q", name, r.Role), "use processor, partner, authority, acquirer or controller")
		}
		countryOK := false
		switch _, known := CountryName(r.Country); {
		case r.Country == "":
			c.add(base, fmt.Sprintf("recipient %s has no country", name), "add country: the ISO 3166 two-letter code of where it receives the data (ZZ if not known in advance)")
		case !known:
			c.add(base+".country", fmt.Sprintf("recipient %s has unknown country code %q", name, r.Country), "write an ISO 3166-1 alpha-2 code in capitals, e.g. US, CA, DE")
		default:
			countryOK = true
		}
		if len(r.Purposes) == 0 {
			c.add(base, fmt.Sprintf("recipient %s has no purposes: processors may use data only for the purposes it was shared for", name), "list them under purposes:")
		}
		purposesKnown := true
		for j, id := range r.Purposes {
			purposesKnown = c.checkPurposeRef(fmt.Sprintf("%s.purposes[%d]", base, j), id, "recipient "+name) && purposesKnown
		}
		if len(r.Categories) == 0 {
			c.add(base, fmt.Sprintf("recipient %s receives no categories", name), "list the categories it receives under categories:")
		}
		for j, id := range r.Categories {
			cp := fmt.Sprintf("%s.categories[%d]", base, j)
			if !c.checkCategoryRef(cp, id, "recipient "+name) {
				continue
			}
			usedBy := false
			for _, pid := range r.Purposes {
				if pu := p.purByID[pid]; pu != nil && slices.Contains(pu.Uses, id) {
					usedBy = true
				}
			}
			if !usedBy && len(r.Purposes) > 0 && purposesKnown {
				c.add(cp, fmt.Sprintf("recipient %s receives category %s, which none of its purposes uses", name, id), fmt.Sprintf("add %s to the uses: of one of its purposes, or remove it here", id))
			}
			if p.catByID[id].Payment && !slices.Contains(r.Purposes, PaymentPurpose) {
				c.add(cp, fmt.Sprintf("recipient %s receives payment category %s without the purpose payment", name, id), "payment data may go only to recipients serving the purpose payment")
			}
		}
		c.recipientDelivery(base, name, r)
		c.safeguard(base, "recipient "+name, r.Country, r.Safeguard, countryOK)
		if countryOK && r.Country != UnknownCountry && !inEEA(r.Country) && !slices.ContainsFunc(p.Transfers, func(t Transfer) bool { return t.To == r.Country }) {
			c.add(base+".country", fmt.Sprintf("recipient %s is in %s, but no transfer to %s is declared", name, r.Country, r.Country), fmt.Sprintf("add {to: %s, safeguard: ...} under transfers:", r.Country))
		}
	}
}

// safeguard checks a transfer safeguard: outside the EEA one is needed.
func (c *checker) safeguard(base, who, country string, s Safeguard, countryOK bool) {
	switch s {
	case SafeguardAdequacy, SafeguardSCC, SafeguardBCR, SafeguardConsent:
		return
	case "", SafeguardNone:
		if countryOK && country != UnknownCountry && !inEEA(country) {
			c.add(base, fmt.Sprintf("%s is in %s, outside the EEA, without a transfer safeguard", who, country), "add safeguard: adequacy, SCC, BCR or consent")
		}
	default:
		c.add(base+".safeguard", fmt.Sprintf("%s has unknown safeguard %q", who, s), "use adequacy, SCC, BCR, consent or none")
	}
}

func (c *checker) transfers() {
	seen := map[string]bool{}
	for i, t := range c.p.Transfers {
		base := fmt.Sprintf("transfers[%d]", i)
		_, known := CountryName(t.To)
		switch {
		case t.To == "":
			c.add(base, "a transfer has no destination", "add to: the ISO 3166 two-letter code of the country")
			continue
		case !known || t.To == UnknownCountry:
			c.add(base+".to", fmt.Sprintf("transfer to unknown country code %q", t.To), "write an ISO 3166-1 alpha-2 code in capitals, e.g. US, CA, IN")
			continue
		case seen[t.To]:
			c.add(base+".to", fmt.Sprintf("the transfer to %s is declared twice", t.To), "merge the two entries")
		}
		seen[t.To] = true
		c.safeguard(base, "the transfer to "+t.To, t.To, t.Safeguard, true)
	}
}

func (c *checker) stores() {
	seen := map[string]bool{}
	for i, s := range c.p.Stores {
		base := fmt.Sprintf("stores[%d]", i)
		if s.ID == "" || !idRE.MatchString(s.ID) {
			c.add(base, fmt.Sprintf("store #%d needs an id of lower-case letters, digits and hyphens", i+1), "add id:, e.g. logs")
		} else if seen[s.ID] {
			c.add(base+".id", fmt.Sprintf("store %s is declared twice", s.ID), "give each store its own id")
		}
		seen[s.ID] = true
		if s.Name == "" {
			c.add(base, fmt.Sprintf("store %s has no name", s.ID), "add name:, e.g. System log files")
		}
		for j, id := range s.Categories {
			c.checkCategoryRef(fmt.Sprintf("%s.categories[%d]", base, j), id, "store "+s.ID)
		}
	}
}

func (c *checker) rights() {
	p := c.p
	if e := p.Rights.Erasure; e != nil {
		for i, ex := range e.Exemptions {
			switch ex {
			case ExemptArchive, ExemptLegalObligation, ExemptLegalHold, ExemptLegalClaims, ExemptExpression, ExemptPublicInterest:
			default:
				c.add(fmt.Sprintf("rights.erasure.exemptions[%d]", i), fmt.Sprintf("unknown erasure exemption %q", ex), "use archive, legal-obligation, legal-hold, legal-claims, freedom-of-expression or public-interest")
			}
		}
		for i, s := range e.Scopes {
			switch s {
			case ScopeAccount, ScopeCategory, ScopeItem, ScopeContent:
			default:
				c.add(fmt.Sprintf("rights.erasure.scopes[%d]", i), fmt.Sprintf("unknown erasure scope %q", s), "use account, category, item or content")
			}
		}
		archived := false
		for _, cat := range p.categories {
			if cat.Retention.Kind == RetainArchive {
				archived = true
				if !slices.Contains(e.Exemptions, ExemptArchive) && c.has("retention."+cat.ID) {
					c.add("retention."+cat.ID, fmt.Sprintf("category %s is kept as archive, but erasure does not list the archive exemption", cat.ID), "add archive to rights.erasure.exemptions, so members are told why it is kept")
				}
			}
		}
		for _, cat := range p.categories {
			if cat.LegalObligation != "" && !slices.Contains(e.Exemptions, ExemptLegalObligation) {
				c.add("categories."+cat.ID+".legal_obligation", fmt.Sprintf("category %s is kept for a legal obligation, but erasure does not list the legal-obligation exemption", cat.ID),
					"add legal-obligation to rights.erasure.exemptions, so members are told why it is kept")
			}
		}
		if slices.Contains(e.Exemptions, ExemptArchive) && !archived {
			c.add("rights.erasure.exemptions", "erasure lists the archive exemption, but no category is kept as archive", "remove archive from the exemptions, or set a category's retention to archive")
		}
	}
	if p.Rights.Objection == nil {
		for _, pu := range p.declared {
			if !IsBuiltin(pu.ID) && (pu.DirectMarketing || pu.Basis == BasisLegitimateInterest) {
				c.add("rights", fmt.Sprintf("purpose %s is direct marketing or based on legitimate interest, but the right to object is not offered", pu.ID), "add objection: {} under rights:; GDPR Art. 21 gives it")
				break
			}
		}
	}
}

func (c *checker) verification() {
	v := c.p.Verification
	if v.Members != "reauthenticate" {
		c.add("verification.members", fmt.Sprintf("unknown verification for members %q", v.Members), "use reauthenticate")
	}
	if v.Others != "email-code" {
		c.add("verification.others", fmt.Sprintf("unknown verification for people without an account %q", v.Others), "use email-code")
	}
	if d, err := time.ParseDuration(v.CodeTTL); err != nil || d < time.Minute || d > 24*time.Hour {
		c.add("verification.code_ttl", fmt.Sprintf("code_ttl %q must be a duration between 1m and 24h", v.CodeTTL), "write e.g. 30m")
	}
	if v.MaxAttempts < 1 || v.MaxAttempts > 20 {
		c.add("verification.max_attempts", fmt.Sprintf("max_attempts %d must be between 1 and 20", v.MaxAttempts), "write e.g. 5")
	}
}

func (c *checker) changes() {
	ch := c.p.Changes
	switch ch.Notify {
	case "email", "notice", "email-and-notice":
	default:
		c.add("changes.notify", fmt.Sprintf("unknown changes.notify %q", ch.Notify), "use email, notice or email-and-notice")
	}
	if ch.NoticeDays < 0 || ch.NoticeDays > 365 {
		c.add("changes.notice_days", fmt.Sprintf("notice_days %d must be between 0 and 365", ch.NoticeDays), "write the days between announcing a change and its effect, e.g. 30")
	}
}

var cookieNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (c *checker) cookies() {
	p := c.p
	seen := map[string]bool{}
	for i, ck := range p.Cookies {
		base := fmt.Sprintf("cookies[%d]", i)
		name := ck.Name
		switch {
		case name == "":
			name = fmt.Sprintf("#%d", i+1)
			c.add(base, fmt.Sprintf("cookie %s has no name", name), "add name: as the browser sees it")
		case !cookieNameRE.MatchString(name):
			c.add(base+".name", fmt.Sprintf("cookie name %q is not a valid cookie name", name), "use letters, digits, _ . and -")
		case seen[name]:
			c.add(base+".name", fmt.Sprintf("cookie %s is declared twice", name), "remove one")
		}
		seen[ck.Name] = true
		if ck.Purpose == "" {
			c.add(base, fmt.Sprintf("cookie %s has no purpose", name), "add purpose: the declared purpose it serves, e.g. provide-service")
		} else {
			c.checkPurposeRef(base+".purpose", ck.Purpose, "cookie "+name)
		}
		if ck.Lifetime == "" {
			c.add(base, fmt.Sprintf("cookie %s has no lifetime", name), "add lifetime: session, or a period such as 30 days")
		} else if ck.Lifetime != "session" {
			if _, err := ParsePeriod(ck.Lifetime); err != nil {
				c.add(base+".lifetime", fmt.Sprintf("cookie %s: lifetime %v", name, err), "write session, or a period such as 30 days")
			}
		}
		switch ck.Kind {
		case CookieFunctional, CookieAnalytics, CookieAdvertising, CookieTracking:
		case "":
			c.add(base, fmt.Sprintf("cookie %s has no kind", name), "add kind: functional, analytics, advertising or tracking")
		default:
			c.add(base+".kind", fmt.Sprintf("cookie %s has unknown kind %q", name, ck.Kind), "use functional, analytics, advertising or tracking")
		}
		switch ck.SetBy {
		case "steward":
			if !ck.FirstParty {
				c.add(base, fmt.Sprintf("cookie %s is set by steward, which sets only first-party cookies", name), "add first_party: true")
			}
		case "partner":
		case "":
			c.add(base, fmt.Sprintf("cookie %s does not say who sets it", name), "add set_by: steward or partner")
		default:
			c.add(base+".set_by", fmt.Sprintf("cookie %s has unknown set_by %q", name, ck.SetBy), "use steward or partner")
		}
		if ck.Kind != "" && ck.Kind != CookieFunctional {
			if pu := p.purByID[ck.Purpose]; pu != nil && pu.Basis != BasisConsent {
				c.add(base+".kind", fmt.Sprintf("cookie %s is a %s cookie, but its purpose %s is not based on consent", name, ck.Kind, ck.Purpose), "only strictly necessary (functional) cookies may be set without consent; use a consent-based purpose or remove the cookie")
			}
		}
		if p.Promises.NoTrackingCookies {
			if ck.Kind == CookieTracking || ck.Kind == CookieAdvertising || ck.Kind == CookieAnalytics {
				c.add(base+".kind", fmt.Sprintf("contradiction: promises.no_tracking_cookies is true, but cookie %s is %s %s cookie", name, article(string(ck.Kind)), ck.Kind), "remove the cookie, or withdraw the promise (a significant change)")
			}
			if ck.SetBy == "partner" {
				c.add(base, fmt.Sprintf("contradiction: promises.no_tracking_cookies is true, but cookie %s is set by a partner", name), "remove partner cookies: no one can vouch for what a partner's cookie tracks")
			}
		}
	}
}

func (c *checker) promises() {
	p := c.p
	pr := p.Promises
	for _, pu := range p.declared {
		if IsBuiltin(pu.ID) {
			continue
		}
		base := "purposes." + pu.ID
		if pr.NoSale && pu.SaleOrShare {
			c.add(base, fmt.Sprintf("contradiction: promises.no_sale is true, but purpose %s sells or shares data", pu.ID), "set sale_or_share: false, or withdraw the promise")
		}
		if pr.MarketingOnlyWithConsent && (pu.DirectMarketing || pu.ThirdPartyMarketing) && pu.Basis != BasisConsent {
			c.add(base, fmt.Sprintf("contradiction: promises.marketing_only_with_consent is true, but marketing purpose %s has basis %s", pu.ID, pu.Basis), "make it basis: consent, with a notice")
		}
		if pr.NoAutomatedDecisions && pu.AutomatedDecisions {
			c.add(base, fmt.Sprintf("contradiction: promises.no_automated_decisions is true, but purpose %s makes automated decisions", pu.ID), "set automated_decisions: false, or withdraw the promise")
		}
	}
	if pr.NoSharingWithoutConsent {
		for i, r := range p.Recipients {
			if r.Role == RoleProcessor {
				continue // processors act for us; an authority too may receive only for a legal reason or on consent
			}
			for j, pid := range r.Purposes {
				pu := p.purByID[pid]
				if pu != nil && pu.Basis != BasisConsent && pu.Basis != BasisLegalObligation && pu.ID != LegalClaims {
					c.add(fmt.Sprintf("recipients[%d].purposes[%d]", i, j), fmt.Sprintf("contradiction: promises.no_sharing_without_consent is true, but %s %s receives data for %s, based on %s", r.Role, r.ID, pid, pu.Basis), "share with partners only for consent-based or legal purposes, or withdraw the promise")
				}
			}
		}
	}
	if pr.LocationFromIPOnly {
		if cat := p.fieldCat["location"]; cat != nil {
			c.add("categories."+cat.ID, fmt.Sprintf("contradiction: promises.location_from_ip_only is true, but category %s collects field location from people", cat.ID), "remove the location field; location may only come from the IP address")
		}
		if cat := p.fieldCat["country"]; cat != nil {
			for i, s := range cat.Source {
				if s != "ip" {
					c.add(fmt.Sprintf("categories.%s.source[%d]", cat.ID, i), fmt.Sprintf("contradiction: promises.location_from_ip_only is true, but category %s also comes from %s", cat.ID, s), "make source: [ip]")
				}
			}
		}
	}
	if pr.ActivityNotLinked {
		for _, cat := range p.categories {
			if cat.LinkToAccount {
				c.add("categories."+cat.ID+".link_to_account", fmt.Sprintf("contradiction: promises.activity_not_linked is true, but category %s links activity to accounts", cat.ID), "set link_to_account: false, or withdraw the promise")
			}
		}
	}
	if pr.SharedReportsAnonymised && p.Analytics.KAnonymity < 2 {
		c.add("analytics.k_anonymity", "contradiction: promises.shared_reports_anonymised is true, but k_anonymity is below 2, so no group is suppressed", "set k_anonymity to 10 or more")
	}
}

func (c *checker) statements() {
	for i, s := range c.p.Statements {
		if strings.TrimSpace(s.Text) == "" {
			c.add(fmt.Sprintf("statements[%d]", i), fmt.Sprintf("statement #%d has no text", i+1), "write the statement under text:, or remove it")
		}
	}
}

var searchParamRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (c *checker) analytics() {
	a := c.p.Analytics
	if a.KAnonymity < 1 || a.KAnonymity > 1000 {
		c.add("analytics.k_anonymity", fmt.Sprintf("k_anonymity %d must be between 1 and 1000", a.KAnonymity), "write e.g. 10")
	} else if a.PublicTrends && a.KAnonymity < 2 {
		c.add("analytics.k_anonymity", "public_trends is on but k_anonymity is below 2, so groups of one person would be published", "set k_anonymity to 10 or more")
	}
	if a.DPEpsilon < 0 || a.DPEpsilon > 10 {
		c.add("analytics.dp_epsilon", fmt.Sprintf("dp_epsilon %g must be between 0 (no noise) and 10", a.DPEpsilon), "write e.g. 1.0")
	}
	if !searchParamRE.MatchString(a.SearchParam) {
		c.add("analytics.search_param", fmt.Sprintf("search_param %q is not a query parameter name", a.SearchParam), "write the name of the site's search parameter, e.g. q")
	}
	switch a.LocationGranularity {
	case GranularityNone, GranularityCountry, GranularityRegion, GranularityCity:
		if a.LocationGranularity.rank() > c.p.LocationGranularity().rank() {
			c.add("analytics.location_granularity", fmt.Sprintf("analytics.location_granularity %s is finer than the location the policy allows (%s)", a.LocationGranularity, c.p.LocationGranularity()), "lower it, or declare the finer location fields")
		}
	default:
		c.add("analytics.location_granularity", fmt.Sprintf("unknown location_granularity %q", a.LocationGranularity), "use none, country, region or city")
	}
}

func (c *checker) sites() {
	seen := map[string]bool{}
	for i, s := range c.p.Sites {
		base := fmt.Sprintf("sites[%d]", i)
		switch {
		case s.ID == "" || !idRE.MatchString(s.ID):
			c.add(base, fmt.Sprintf("site #%d needs an id of lower-case letters, digits and hyphens", i+1), "add id:, e.g. demo")
		case seen[s.ID]:
			c.add(base+".id", fmt.Sprintf("site %s is declared twice", s.ID), "give each site its own id")
		}
		seen[s.ID] = true
		if len(s.Origins) == 0 {
			c.add(base, fmt.Sprintf("site %s has no origins", s.ID), "list the origins its pages are served from, e.g. [https://www.example.org]")
		}
		for j, o := range s.Origins {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				c.add(fmt.Sprintf("%s.origins[%d]", base, j), fmt.Sprintf("site %s: %q is not an origin", s.ID, o), "write scheme, host and port only, e.g. https://www.example.org")
			}
		}
		if s.TimeZone == "" {
			c.add(base, fmt.Sprintf("site %s has no time_zone", s.ID), "add time_zone: an IANA zone such as Europe/Berlin or UTC")
		} else if _, err := time.LoadLocation(s.TimeZone); err != nil {
			c.add(base+".time_zone", fmt.Sprintf("site %s: unknown time zone %q", s.ID, s.TimeZone), "use an IANA zone such as Europe/Berlin, America/Toronto or UTC")
		}
	}
}

func (c *checker) newsletters() {
	p := c.p
	seen := map[string]bool{}
	for i, n := range p.Newsletters {
		base := fmt.Sprintf("newsletters[%d]", i)
		switch {
		case n.ID == "" || !idRE.MatchString(n.ID):
			c.add(base, fmt.Sprintf("newsletter #%d needs an id of lower-case letters, digits and hyphens", i+1), "add id:, e.g. updates")
		case seen[n.ID]:
			c.add(base+".id", fmt.Sprintf("newsletter %s is declared twice", n.ID), "give each list its own id")
		}
		seen[n.ID] = true
		if n.Name == "" {
			c.add(base, fmt.Sprintf("newsletter %s has no name", n.ID), "add name: as subscribers see it")
		}
		if n.Purpose == "" {
			c.add(base, fmt.Sprintf("newsletter %s has no purpose", n.ID), "add purpose: a consent-based direct-marketing purpose")
			continue
		}
		if !c.checkPurposeRef(base+".purpose", n.Purpose, "newsletter "+n.ID) {
			continue
		}
		pu := p.purByID[n.Purpose]
		if pu.Basis != BasisConsent || !pu.DirectMarketing {
			c.add(base+".purpose", fmt.Sprintf("newsletter %s uses purpose %s, which is not consent-based direct marketing", n.ID, n.Purpose), fmt.Sprintf("give %s basis: consent and direct_marketing: true, or use such a purpose", n.Purpose))
		}
		for _, f := range []string{"email", "subscription"} {
			cat := p.fieldCat[f]
			if cat == nil {
				c.add(base, fmt.Sprintf("newsletter %s needs field %s, which no category declares", n.ID, f), fmt.Sprintf("add %s to the fields: of a category", f))
			} else if !slices.Contains(pu.Uses, cat.ID) {
				c.add(base+".purpose", fmt.Sprintf("newsletter %s: purpose %s does not use category %s, which holds %s", n.ID, n.Purpose, cat.ID, f), fmt.Sprintf("add %s to the uses: of %s", cat.ID, n.Purpose))
			}
		}
	}
}

// secretEnvRE is the name of an environment variable.
var secretEnvRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)

// secretEnv checks the secret_env of who (under base): given, and the
// name of an environment variable.
func (c *checker) secretEnv(base, who, v, example string) {
	switch {
	case v == "":
		c.add(base, fmt.Sprintf("%s has no secret_env", who), "add secret_env: the environment variable that holds the client secret, e.g. "+example)
	case !secretEnvRE.MatchString(v):
		c.add(base+".secret_env", fmt.Sprintf("%s: %q is not an environment variable name", who, v), "use upper-case letters, digits and _, e.g. "+example)
	}
}

// identityProviders checks the services people may sign in with: each
// named, at an https issuer, with a client id and the variable holding
// its secret, and importing only claims a sign-in can carry into fields
// the policy declares, in categories that say they come from third
// parties.
func (c *checker) identityProviders() {
	p := c.p
	seen := map[string]bool{}
	for i, ip := range p.IdentityProviders {
		base := fmt.Sprintf("identity_providers[%d]", i)
		switch {
		case ip.ID == "" || !idRE.MatchString(ip.ID):
			c.add(base, fmt.Sprintf("identity provider #%d needs an id of lower-case letters, digits and hyphens", i+1), "add id:, e.g. orcid")
		case seen[ip.ID]:
			c.add(base+".id", fmt.Sprintf("identity provider %s is declared twice", ip.ID), "give each provider its own id")
		}
		seen[ip.ID] = true
		if ip.Name == "" {
			c.add(base, fmt.Sprintf("identity provider %s has no name", ip.ID), "add name: as people know the service, e.g. ORCID")
		}
		if ip.Issuer == "" {
			c.add(base, fmt.Sprintf("identity provider %s has no issuer", ip.ID), "add issuer: the provider's OpenID issuer URL, e.g. https://orcid.org")
		} else if u, err := url.Parse(ip.Issuer); err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
			(u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname()))) {
			c.add(base+".issuer", fmt.Sprintf("identity provider %s: issuer %q is not an https URL", ip.ID, ip.Issuer), "write the issuer as the provider publishes it, e.g. https://orcid.org")
		}
		if ip.ClientID == "" {
			c.add(base, fmt.Sprintf("identity provider %s has no client_id", ip.ID), "add client_id: the id the provider gave this site")
		}
		c.secretEnv(base, "identity provider "+ip.ID, ip.SecretEnv, "STEWARD_OIDC_ORCID_SECRET")
		if len(ip.Claims) == 0 {
			c.add(base, fmt.Sprintf("identity provider %s imports no claims", ip.ID), "add claims: the fields a sign-in may import, e.g. [name, email]")
		}
		for j, f := range ip.Claims {
			path := fmt.Sprintf("%s.claims[%d]", base, j)
			if !slices.Contains(ImportableClaims(), f) {
				c.add(path, fmt.Sprintf("identity provider %s: a sign-in cannot import %q", ip.ID, f), "use "+orList(ImportableClaims()))
				continue
			}
			cat := p.fieldCat[f]
			if cat == nil {
				c.add(path, fmt.Sprintf("identity provider %s imports %s, which no category declares", ip.ID, f), fmt.Sprintf("add %s to the fields: of a category, or remove it from claims", f))
				continue
			}
			if len(cat.Source) > 0 && !slices.ContainsFunc(cat.Source, func(s string) bool { return s == "third-party" || strings.HasPrefix(s, "third-party:") }) {
				c.add(path, fmt.Sprintf("identity provider %s imports %s, but category %s does not list third-party among its sources", ip.ID, f, cat.ID), fmt.Sprintf("add third-party to the source: of %s", cat.ID))
			}
		}
	}
}

// loopbackHost reports whether host is this machine: an issuer there may
// use plain http (a provider run beside Steward in development).
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// staffRoleRE is a staff role's id, as identity stores it.
var staffRoleRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// staff checks the staff roles: each names declared purposes, and none
// reads payment data except through payment.
func (c *checker) staff() {
	for _, r := range c.p.Staff {
		base := "staff." + r.ID
		if !staffRoleRE.MatchString(r.ID) {
			c.add(base, fmt.Sprintf("staff role %q is not a valid role name", r.ID), "use lower-case letters, digits and hyphens, e.g. support")
		}
		if len(r.Purposes) == 0 {
			c.add(base, fmt.Sprintf("staff role %s names no purpose, so its screens could show no personal data", r.ID), "list the purposes: its screens serve, e.g. [support]")
		}
		for i, pu := range r.Purposes {
			c.checkPurposeRef(fmt.Sprintf("%s.purposes[%d]", base, i), pu, "staff role "+r.ID)
		}
	}
}

// recipientDelivery checks the fields a recipient may receive and how it
// is reached.
func (c *checker) recipientDelivery(base, name string, r *Recipient) {
	seen := map[string]bool{}
	for j, f := range r.Fields {
		path := fmt.Sprintf("%s.fields[%d]", base, j)
		cat := c.p.fieldCat[f]
		switch {
		case seen[f]:
			c.add(path, fmt.Sprintf("recipient %s lists field %s twice", name, f), "list each field once")
		case cat == nil:
			c.add(path, fmt.Sprintf("recipient %s receives field %s, which no category declares", name, f), "name a field of one of its categories")
		case !slices.Contains(r.Categories, cat.ID):
			c.add(path, fmt.Sprintf("recipient %s receives field %s, which is in category %s, not one of its categories", name, f, cat.ID), fmt.Sprintf("add %s to its categories, or remove the field", cat.ID))
		}
		seen[f] = true
	}
	if w := r.Webhook; w != nil {
		if u, err := url.Parse(w.URL); err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http") {
			c.add(base+".webhook.url", fmt.Sprintf("recipient %s: webhook url %q is not an absolute http(s) URL", name, w.URL), "write the endpoint's full URL, e.g. https://partner.example/steward")
		}
		if !secretEnvRE.MatchString(w.SecretEnv) {
			c.add(base+".webhook.secret_env", fmt.Sprintf("recipient %s: webhook secret_env %q is not an environment variable name", name, w.SecretEnv), "name the variable that holds the signing secret, e.g. STEWARD_RECIPIENT_PARTNER_SECRET")
		}
	}
	if p := r.Pull; p != nil && !secretEnvRE.MatchString(p.KeyEnv) {
		c.add(base+".pull.key_env", fmt.Sprintf("recipient %s: pull key_env %q is not an environment variable name", name, p.KeyEnv), "name the variable that holds its API key, e.g. STEWARD_RECIPIENT_PARTNER_KEY")
	}
}
