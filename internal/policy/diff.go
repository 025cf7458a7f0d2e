package policy

import (
	"fmt"
	"slices"
	"strings"
)

// DiffItem is one difference between two versions.
type DiffItem struct {
	Path          string `json:"path"`
	Text          string `json:"text"` // a readable sentence
	Significant   bool   `json:"significant"`
	ReducesRights bool   `json:"reduces_rights"`
}

// Change classifies the difference between two versions. A significant
// change is announced to every member and subscriber; one that reduces
// rights applies to a member only after they accept it
// (changes.significant_requires_consent).
type Change struct {
	Significant   bool       `json:"significant"`
	ReducesRights bool       `json:"reduces_rights"`
	Reasons       []string   `json:"reasons"` // why it is significant, or what changed when minor
	Items         []DiffItem `json:"items"`
}

// Classification is "significant" or "minor" ("none" when nothing
// changed).
func (c Change) Classification() string {
	switch {
	case c.Significant:
		return "significant"
	case len(c.Items) == 0:
		return "none"
	}
	return "minor"
}

// String is the change as the CLI prints it.
func (c Change) String() string {
	var b strings.Builder
	switch c.Classification() {
	case "none":
		b.WriteString("no change in meaning\n")
		return b.String()
	case "significant":
		b.WriteString("significant change")
		if c.ReducesRights {
			b.WriteString(" that reduces rights (members must accept it)")
		}
		b.WriteString(":\n")
	default:
		b.WriteString("minor change:\n")
	}
	for _, it := range c.Items {
		mark := "minor"
		switch {
		case it.ReducesRights:
			mark = "reduces rights"
		case it.Significant:
			mark = "significant"
		}
		fmt.Fprintf(&b, "  - [%s] %s\n", mark, it.Text)
	}
	return b.String()
}

type differ struct{ items []DiffItem }

func (d *differ) minor(path, format string, args ...any) {
	d.items = append(d.items, DiffItem{Path: path, Text: fmt.Sprintf(format, args...)})
}

func (d *differ) significant(path, format string, args ...any) {
	d.items = append(d.items, DiffItem{Path: path, Text: fmt.Sprintf(format, args...), Significant: true})
}

func (d *differ) reduces(path, format string, args ...any) {
	d.items = append(d.items, DiffItem{Path: path, Text: fmt.Sprintf(format, args...), Significant: true, ReducesRights: true})
}

// Diff classifies the change from old to new. Significant: a right
// removed or given an exemption (these also reduce rights, as does a
// purpose leaving consent, a promise withdrawn or members no longer asked
// to accept reductions), a purpose, recipient, transfer, cookie, field or
// source added, a purpose using more categories or moved to a weaker
// basis, a retention lengthened, the minimum age lowered, and anything
// else that lets more data go further or stay longer. Minor: wording,
// contact details, shorter retention, removed purposes, recipients or
// cookies.
func Diff(old, new *Policy) Change {
	d := &differ{}
	d.controller(old, new)
	d.header(old, new)
	d.categories(old, new)
	d.purposes(old, new)
	d.recipients(old, new)
	d.transfers(old, new)
	d.stores(old, new)
	d.rights(old, new)
	d.changes(old, new)
	d.cookies(old, new)
	d.promises(old, new)
	d.analytics(old, new)
	d.newsletters(old, new)
	d.identityProviders(old, new)
	d.misc(old, new)
	c := Change{Items: nonNil(d.items), Reasons: []string{}}
	for _, it := range d.items {
		c.Significant = c.Significant || it.Significant
		c.ReducesRights = c.ReducesRights || it.ReducesRights
	}
	for _, it := range d.items {
		if it.Significant || !c.Significant {
			c.Reasons = append(c.Reasons, it.Text)
		}
	}
	return c
}

func (d *differ) controller(o, n *Policy) {
	a, b := o.Controller, n.Controller
	if a.Name != b.Name {
		d.minor("controller.name", "The controller's name changed from %q to %q.", a.Name, b.Name)
	}
	if a.Contact != b.Contact || a.Address != b.Address || a.Website != b.Website || a.DPO != b.DPO {
		d.minor("controller", "The controller's contact details changed.")
	}
	if a.Authority != b.Authority {
		d.minor("controller.authority", "The supervisory authority or how to complain changed.")
	}
}

func (d *differ) header(o, n *Policy) {
	if o.Version != n.Version {
		d.minor("version", "The effective date changed from %s to %s.", o.Version, n.Version)
	}
	if o.Title != n.Title || o.Summary != n.Summary {
		d.minor("summary", "The title or summary was reworded.")
	}
	switch {
	case n.MinimumAge < o.MinimumAge:
		d.significant("minimum_age", "The minimum age was lowered from %d to %d.", o.MinimumAge, n.MinimumAge)
	case n.MinimumAge > o.MinimumAge:
		d.minor("minimum_age", "The minimum age was raised from %d to %d.", o.MinimumAge, n.MinimumAge)
	}
	for _, f := range added(o.Registration.Fields, n.Registration.Fields) {
		d.significant("registration.fields", "Sign-up now asks for %s.", FieldLabel(f))
	}
	for _, f := range added(n.Registration.Fields, o.Registration.Fields) {
		d.minor("registration.fields", "Sign-up no longer asks for %s.", FieldLabel(f))
	}
	for _, f := range added(o.Registration.Required, n.Registration.Required) {
		d.significant("registration.required", "Sign-up now requires %s.", FieldLabel(f))
	}
	for _, f := range added(n.Registration.Required, o.Registration.Required) {
		d.minor("registration.required", "Sign-up no longer requires %s.", FieldLabel(f))
	}
	if o.Registration.AgeCheck != n.Registration.AgeCheck {
		if n.Registration.AgeCheck == AgeDateOfBirth {
			d.significant("registration.age_check", "Sign-up now asks for the date of birth to check the minimum age.")
		} else {
			d.minor("registration.age_check", "The age check at sign-up changed from %s to %s.", o.Registration.AgeCheck, n.Registration.AgeCheck)
		}
	}
}

func (d *differ) categories(o, n *Policy) {
	for _, b := range n.categories {
		base := "categories." + b.ID
		a := o.catByID[b.ID]
		if a == nil {
			d.significant(base, "A new category of data is collected: %s (%s).", b.ID, strings.Join(b.Fields, ", "))
			continue
		}
		for _, f := range added(a.Fields, b.Fields) {
			d.significant(base+".fields", "Category %s now includes %s.", b.ID, FieldLabel(f))
		}
		for _, f := range added(b.Fields, a.Fields) {
			d.minor(base+".fields", "Category %s no longer includes %s.", b.ID, FieldLabel(f))
		}
		for _, f := range added(b.SelfEditable, a.SelfEditable) {
			d.significant(base+".self_editable", "You can no longer correct %s yourself; a correction now needs a request.", FieldLabel(f))
		}
		for _, f := range added(a.SelfEditable, b.SelfEditable) {
			d.minor(base+".self_editable", "You can now correct %s yourself.", FieldLabel(f))
		}
		for _, f := range added(b.Sensitive, a.Sensitive) {
			d.significant(base+".sensitive", "%s is no longer encrypted with a key of your own.", upper(FieldLabel(f)))
		}
		for _, f := range added(a.Sensitive, b.Sensitive) {
			d.minor(base+".sensitive", "%s is now encrypted with a key of your own.", upper(FieldLabel(f)))
		}
		for _, s := range added(a.Source, b.Source) {
			d.significant(base+".source", "Category %s now also comes from %s.", b.ID, sourceLabel(s))
		}
		for _, s := range added(b.Source, a.Source) {
			d.minor(base+".source", "Category %s no longer comes from %s.", b.ID, sourceLabel(s))
		}
		if a.Payment && !b.Payment {
			d.significant(base+".payment", "Category %s is no longer treated as payment data, so purposes other than payment may read it.", b.ID)
		}
		if !a.Payment && b.Payment {
			d.minor(base+".payment", "Category %s is now payment data, readable only to take payment.", b.ID)
		}
		if a.LegalObligation == "" && b.LegalObligation != "" {
			d.reduces(base+".legal_obligation", "Category %s is now kept after you ask us to erase it, for a legal obligation.", b.ID)
		}
		if a.LegalObligation != "" && b.LegalObligation == "" {
			d.minor(base+".legal_obligation", "Category %s is no longer kept after you ask us to erase it.", b.ID)
		}
		if !a.LinkToAccount && b.LinkToAccount {
			d.significant(base+".link_to_account", "Your activity in category %s is now linked to your account.", b.ID)
		}
		if a.LinkToAccount && !b.LinkToAccount {
			d.minor(base+".link_to_account", "Your activity in category %s is no longer linked to your account.", b.ID)
		}
		if ga, gb := effGranularity(a), effGranularity(b); gb.rank() > ga.rank() {
			d.significant(base+".granularity", "Location in category %s is now kept to the %s instead of the %s.", b.ID, gb, ga)
		} else if gb.rank() < ga.rank() {
			d.minor(base+".granularity", "Location in category %s is now kept only to the %s.", b.ID, gb)
		}
		switch {
		case b.Retention.Longer(a.Retention):
			d.significant("retention."+b.ID, "Category %s is kept longer: %s instead of %s.", b.ID, b.Retention, a.Retention)
		case a.Retention.Longer(b.Retention):
			d.minor("retention."+b.ID, "Category %s is kept for less time: %s instead of %s.", b.ID, b.Retention, a.Retention)
		}
		// Aggregates kept past the period are kept longer (without end);
		// dropping them keeps less, as a shorter period does.
		switch {
		case b.Retention.Kind == RetainPeriod && b.Retention.Then > a.Retention.Then:
			d.significant("retention."+b.ID, "Past its retention, category %s is no longer only deleted: %s.", b.ID, b.Retention)
		case a.Retention.Kind == RetainPeriod && a.Retention.Then > b.Retention.Then:
			d.minor("retention."+b.ID, "Past its retention, category %s is deleted and no aggregates of it are kept: %s instead of %s.", b.ID, b.Retention, a.Retention)
		}
		if a.Description != b.Description {
			d.minor(base+".description", "The description of category %s was reworded.", b.ID)
		}
	}
	for _, a := range o.categories {
		if n.catByID[a.ID] == nil {
			d.minor("categories."+a.ID, "Category %s is no longer collected.", a.ID)
		}
	}
}

func effGranularity(c *Category) Granularity {
	if c.Granularity != "" {
		return c.Granularity
	}
	g := GranularityNone
	for _, f := range c.Fields {
		if (f == "country" || f == "region" || f == "city") && Granularity(f).rank() > g.rank() {
			g = Granularity(f)
		}
	}
	return g
}

func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (d *differ) purposes(o, n *Policy) {
	for _, b := range n.purposes {
		if b.Builtin {
			continue
		}
		base := "purposes." + b.ID
		a := o.purByID[b.ID]
		if a == nil {
			d.significant(base, "A new purpose: %s (%s), based on %s.", b.ID, b.Description, b.Basis)
			continue
		}
		for _, c := range added(a.Uses, b.Uses) {
			d.significant(base+".uses", "Purpose %s now also uses %s.", b.ID, c)
		}
		for _, c := range added(b.Uses, a.Uses) {
			d.minor(base+".uses", "Purpose %s no longer uses %s.", b.ID, c)
		}
		if a.Basis != b.Basis {
			switch {
			case a.Basis == BasisConsent:
				d.reduces(base+".basis", "Purpose %s no longer asks for your consent: its basis changed from consent to %s.", b.ID, b.Basis)
			case b.Basis.protection() < a.Basis.protection():
				d.significant(base+".basis", "Purpose %s moved to a weaker basis: from %s to %s.", b.ID, a.Basis, b.Basis)
			default:
				d.minor(base+".basis", "Purpose %s changed its basis from %s to %s.", b.ID, a.Basis, b.Basis)
			}
		}
		flag := func(was, is bool, key, on, off string) {
			if !was && is {
				d.significant(base+"."+key, "Purpose %s %s.", b.ID, on)
			} else if was && !is {
				d.minor(base+"."+key, "Purpose %s %s.", b.ID, off)
			}
		}
		flag(a.DirectMarketing, b.DirectMarketing, "direct_marketing", "is now used for direct marketing", "is no longer used for direct marketing")
		flag(a.SaleOrShare, b.SaleOrShare, "sale_or_share", "now sells or shares data", "no longer sells or shares data")
		flag(a.ThirdPartyMarketing, b.ThirdPartyMarketing, "third_party_marketing", "now markets other companies' products", "no longer markets other companies' products")
		flag(a.AutomatedDecisions, b.AutomatedDecisions, "automated_decisions", "now makes automated decisions", "no longer makes automated decisions")
		if a.Notice != b.Notice || a.Interest != b.Interest || a.Description != b.Description {
			d.minor(base, "The wording of purpose %s changed.", b.ID)
		}
	}
	for _, a := range o.purposes {
		if !a.Builtin && n.purByID[a.ID] == nil {
			d.minor("purposes."+a.ID, "Purpose %s was removed.", a.ID)
		}
	}
}

func (d *differ) recipients(o, n *Policy) {
	for _, b := range n.Recipients {
		a := o.Recipient(b.ID)
		base := "recipients." + b.ID
		if a == nil {
			d.significant(base, "A new recipient: %s (%s, %s).", b.Name, b.Role, b.Country)
			continue
		}
		for _, x := range added(a.Purposes, b.Purposes) {
			d.significant(base+".purposes", "Recipient %s now also receives data for %s.", b.Name, x)
		}
		for _, x := range added(a.Categories, b.Categories) {
			d.significant(base+".categories", "Recipient %s now also receives %s.", b.Name, x)
		}
		if a.Country != b.Country {
			d.significant(base+".country", "Recipient %s now receives data in %s instead of %s.", b.Name, b.Country, a.Country)
		}
		if a.Role != b.Role {
			d.significant(base+".role", "Recipient %s is now a %s instead of a %s.", b.Name, b.Role, a.Role)
		}
		if b.Safeguard.strength() < a.Safeguard.strength() {
			d.significant(base+".safeguard", "Transfers to %s now rely on a weaker safeguard: %s instead of %s.", b.Name, b.Safeguard, a.Safeguard)
		} else if a.Safeguard != b.Safeguard {
			d.minor(base+".safeguard", "Transfers to %s now rely on %s.", b.Name, b.Safeguard)
		}
		if len(added(b.Purposes, a.Purposes))+len(added(b.Categories, a.Categories)) > 0 {
			d.minor(base, "Recipient %s receives less than before.", b.Name)
		}
		if a.Name != b.Name || a.Note != b.Note {
			d.minor(base, "The description of recipient %s changed.", b.ID)
		}
		d.recipientFields(base, a, b)
	}
	for _, a := range o.Recipients {
		if n.Recipient(a.ID) == nil {
			d.minor("recipients."+a.ID, "Recipient %s no longer receives data.", a.Name)
		}
	}
}

func (d *differ) transfers(o, n *Policy) {
	find := func(ts []Transfer, to string) *Transfer {
		for i := range ts {
			if ts[i].To == to {
				return &ts[i]
			}
		}
		return nil
	}
	for _, b := range n.Transfers {
		a := find(o.Transfers, b.To)
		base := "transfers." + b.To
		if a == nil {
			d.significant(base, "Data is now transferred to %s.", countryLabel(b.To))
			continue
		}
		if (!a.Stores && b.Stores) || (!a.Processes && b.Processes) {
			d.significant(base, "Data is now also %s in %s.", storesProcesses(b.Stores && !a.Stores, b.Processes && !a.Processes), countryLabel(b.To))
		}
		if b.Safeguard.strength() < a.Safeguard.strength() {
			d.significant(base+".safeguard", "Transfers to %s now rely on a weaker safeguard: %s instead of %s.", countryLabel(b.To), b.Safeguard, a.Safeguard)
		} else if a.Safeguard != b.Safeguard {
			d.minor(base+".safeguard", "Transfers to %s now rely on %s.", countryLabel(b.To), b.Safeguard)
		}
	}
	for _, a := range o.Transfers {
		if find(n.Transfers, a.To) == nil {
			d.minor("transfers."+a.To, "Data is no longer transferred to %s.", countryLabel(a.To))
		}
	}
}

func storesProcesses(stores, processes bool) string {
	switch {
	case stores && processes:
		return "stored and processed"
	case stores:
		return "stored"
	}
	return "processed"
}

func countryLabel(code string) string {
	if name, ok := CountryName(code); ok {
		return name
	}
	return code
}

func (d *differ) stores(o, n *Policy) {
	ids := func(ss []Store) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	for _, id := range added(ids(o.Stores), ids(n.Stores)) {
		d.minor("stores."+id, "Data is now also kept in %s.", id)
	}
	for _, id := range added(ids(n.Stores), ids(o.Stores)) {
		d.minor("stores."+id, "Data is no longer kept in %s.", id)
	}
}

func (d *differ) rights(o, n *Policy) {
	for _, r := range []string{"access", "portability", "rectification", "restriction", "objection", "erasure"} {
		switch {
		case o.Offers(r) && !n.Offers(r):
			d.reduces("rights."+r, "The right of %s is no longer offered.", r)
		case !o.Offers(r) && n.Offers(r):
			d.minor("rights."+r, "The right of %s is now offered.", r)
		}
	}
	if o.Rights.Erasure != nil && n.Rights.Erasure != nil {
		a, b := o.Rights.Erasure, n.Rights.Erasure
		for _, e := range added(a.Exemptions, b.Exemptions) {
			d.reduces("rights.erasure.exemptions", "Erasure has a new exemption: data kept for %s survives an erasure request.", e)
		}
		for _, e := range added(b.Exemptions, a.Exemptions) {
			d.minor("rights.erasure.exemptions", "Erasure no longer has the exemption %s.", e)
		}
		for _, s := range added(b.Scopes, a.Scopes) {
			d.reduces("rights.erasure.scopes", "You can no longer ask to erase by %s.", s)
		}
		for _, s := range added(a.Scopes, b.Scopes) {
			d.minor("rights.erasure.scopes", "You can now ask to erase by %s.", s)
		}
	}
	if o.Rights.HowToExercise != n.Rights.HowToExercise {
		d.minor("rights.how_to_exercise", "How to exercise your rights was reworded.")
	}
}

func (d *differ) changes(o, n *Policy) {
	if o.Changes.SignificantRequiresConsent && !n.Changes.SignificantRequiresConsent {
		d.reduces("changes.significant_requires_consent", "Changes that reduce your rights will no longer wait for your acceptance.")
	}
	if !o.Changes.SignificantRequiresConsent && n.Changes.SignificantRequiresConsent {
		d.minor("changes.significant_requires_consent", "Changes that reduce your rights now need your acceptance.")
	}
	if o.Changes.Notify != n.Changes.Notify {
		if strings.Contains(o.Changes.Notify, "email") && !strings.Contains(n.Changes.Notify, "email") {
			d.significant("changes.notify", "Significant changes will no longer be announced by email.")
		} else {
			d.minor("changes.notify", "Changes are now announced by %s.", n.Changes.Notify)
		}
	}
	if n.Changes.NoticeDays < o.Changes.NoticeDays {
		d.significant("changes.notice_days", "Changes are announced %d days ahead instead of %d.", n.Changes.NoticeDays, o.Changes.NoticeDays)
	} else if n.Changes.NoticeDays > o.Changes.NoticeDays {
		d.minor("changes.notice_days", "Changes are announced %d days ahead instead of %d.", n.Changes.NoticeDays, o.Changes.NoticeDays)
	}
}

func (d *differ) cookies(o, n *Policy) {
	for _, b := range n.Cookies {
		a := o.Cookie(b.Name)
		base := "cookies." + b.Name
		if a == nil {
			d.significant(base, "A new %s cookie: %s (%s).", b.Kind, b.Name, b.Lifetime)
			continue
		}
		if a.Kind != b.Kind || a.SetBy != b.SetBy || a.FirstParty != b.FirstParty || a.Purpose != b.Purpose {
			d.significant(base, "Cookie %s changed what it is for or who sets it.", b.Name)
		}
		if cookieLonger(b.Lifetime, a.Lifetime) {
			d.significant(base+".lifetime", "Cookie %s now lasts %s instead of %s.", b.Name, b.Lifetime, a.Lifetime)
		} else if a.Lifetime != b.Lifetime {
			d.minor(base+".lifetime", "Cookie %s now lasts %s.", b.Name, b.Lifetime)
		}
	}
	for _, a := range o.Cookies {
		if n.Cookie(a.Name) == nil {
			d.minor("cookies."+a.Name, "Cookie %s is no longer set.", a.Name)
		}
	}
}

// cookieLonger reports whether lifetime a outlasts b ("session" is the
// shortest).
func cookieLonger(a, b string) bool {
	days := func(s string) float64 {
		if s == "session" {
			return 0
		}
		p, err := ParsePeriod(s)
		if err != nil {
			return 1 << 20
		}
		return p.approxDays()
	}
	return days(a) > days(b)
}

func (d *differ) promises(o, n *Policy) {
	type pr struct {
		key    string
		was    bool
		is     bool
		phrase string
	}
	a, b := o.Promises, n.Promises
	for _, x := range []pr{
		{"no_tracking_cookies", a.NoTrackingCookies, b.NoTrackingCookies, "to use no tracking cookies"},
		{"no_sale", a.NoSale, b.NoSale, "not to sell or share your data"},
		{"no_sharing_without_consent", a.NoSharingWithoutConsent, b.NoSharingWithoutConsent, "not to share your data without your consent or a legal reason"},
		{"marketing_only_with_consent", a.MarketingOnlyWithConsent, b.MarketingOnlyWithConsent, "to market only with your consent"},
		{"location_from_ip_only", a.LocationFromIPOnly, b.LocationFromIPOnly, "to derive your location only from your IP address"},
		{"activity_not_linked", a.ActivityNotLinked, b.ActivityNotLinked, "not to link your activity to your account"},
		{"no_automated_decisions", a.NoAutomatedDecisions, b.NoAutomatedDecisions, "to make no automated decisions about you"},
		{"shared_reports_anonymised", a.SharedReportsAnonymised, b.SharedReportsAnonymised, "to share reports only anonymised"},
	} {
		if x.was && !x.is {
			d.reduces("promises."+x.key, "We withdraw the promise %s.", x.phrase)
		} else if !x.was && x.is {
			d.minor("promises."+x.key, "We now promise %s.", x.phrase)
		}
	}
	if !slices.Equal(o.Statements, n.Statements) {
		d.minor("statements", "Other statements in the notice were reworded.")
	}
}

func (d *differ) analytics(o, n *Policy) {
	a, b := o.Analytics, n.Analytics
	if b.KAnonymity < a.KAnonymity {
		d.significant("analytics.k_anonymity", "Shared reports now show groups as small as %d people (was %d).", b.KAnonymity, a.KAnonymity)
	} else if b.KAnonymity > a.KAnonymity {
		d.minor("analytics.k_anonymity", "Shared reports now hide groups smaller than %d people.", b.KAnonymity)
	}
	switch {
	case a.DPEpsilon > 0 && (b.DPEpsilon == 0 || b.DPEpsilon > a.DPEpsilon):
		d.significant("analytics.dp_epsilon", "Shared reports now carry less privacy noise (epsilon %g, was %g).", b.DPEpsilon, a.DPEpsilon)
	case a.DPEpsilon != b.DPEpsilon:
		d.minor("analytics.dp_epsilon", "Shared reports now carry more privacy noise (epsilon %g).", b.DPEpsilon)
	}
	if !a.PublicTrends && b.PublicTrends {
		d.significant("analytics.public_trends", "Anonymised trends are now published.")
	} else if a.PublicTrends && !b.PublicTrends {
		d.minor("analytics.public_trends", "Anonymised trends are no longer published.")
	}
	if b.LocationGranularity.rank() > a.LocationGranularity.rank() {
		d.significant("analytics.location_granularity", "Reports now show location down to the %s.", b.LocationGranularity)
	} else if b.LocationGranularity != a.LocationGranularity {
		d.minor("analytics.location_granularity", "Reports now show location only to the %s.", b.LocationGranularity)
	}
	if a.SearchParam != b.SearchParam {
		d.minor("analytics.search_param", "The search parameter read by analytics is now %q.", b.SearchParam)
	}
}

func (d *differ) newsletters(o, n *Policy) {
	for _, b := range n.Newsletters {
		a := o.Newsletter(b.ID)
		base := "newsletters." + b.ID
		if a == nil {
			d.minor(base, "A new newsletter you may subscribe to: %s.", b.Name)
			continue
		}
		if (!a.TrackOpens && b.TrackOpens) || (!a.TrackClicks && b.TrackClicks) {
			d.significant(base, "Newsletter %s may now record when you open it or follow its links (only with your consent).", b.Name)
		}
		if a.DoubleOptIn && !b.DoubleOptIn {
			d.significant(base+".double_opt_in", "Subscribing to %s no longer needs a confirmation by email.", b.Name)
		}
		if a.Purpose != b.Purpose {
			d.significant(base+".purpose", "Newsletter %s now serves purpose %s.", b.Name, b.Purpose)
		}
	}
	for _, a := range o.Newsletters {
		if n.Newsletter(a.ID) == nil {
			d.minor("newsletters."+a.ID, "Newsletter %s was discontinued.", a.Name)
		}
	}
}

// identityProviders: a new service to sign in with, or one importing
// more, brings data from a new source (significant); one importing less
// or gone is minor.
func (d *differ) identityProviders(o, n *Policy) {
	for _, b := range n.IdentityProviders {
		a := o.IdentityProvider(b.ID)
		base := "identity_providers." + b.ID
		if a == nil {
			d.significant(base, "You may now sign in with %s, which then gives us %s.", b.Name, andList(fieldLabels(b.Claims)))
			continue
		}
		if more := added(a.Claims, b.Claims); len(more) > 0 {
			d.significant(base+".claims", "A sign-in with %s now also gives us %s.", b.Name, andList(fieldLabels(more)))
		}
		if fewer := added(b.Claims, a.Claims); len(fewer) > 0 {
			d.minor(base+".claims", "A sign-in with %s no longer gives us %s.", b.Name, andList(fieldLabels(fewer)))
		}
		if a.Issuer != b.Issuer {
			d.significant(base+".issuer", "Sign-in with %s now goes through %s.", b.Name, b.Issuer)
		}
	}
	for _, a := range o.IdentityProviders {
		if n.IdentityProvider(a.ID) == nil {
			d.minor("identity_providers."+a.ID, "You can no longer sign in with %s.", a.Name)
		}
	}
}

func fieldLabels(fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = FieldLabel(f)
	}
	return out
}

func (d *differ) misc(o, n *Policy) {
	if o.Verification != n.Verification {
		d.minor("verification", "How we verify your identity for requests changed.")
	}
	if !slices.EqualFunc(o.Sites, n.Sites, func(a, b Site) bool {
		return a.ID == b.ID && a.Name == b.Name && a.TimeZone == b.TimeZone && slices.Equal(a.Origins, b.Origins)
	}) {
		d.minor("sites", "The sites Steward collects activity for changed.")
	}
}

// added returns the elements of b not in a, in b's order.
func added[T comparable](a, b []T) []T {
	var out []T
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}

// recipientFields classifies a change of the fields a recipient receives:
// more fields (or no limit where there was one) is significant, fewer is
// minor.
func (d *differ) recipientFields(base string, a, b *Recipient) {
	switch {
	case len(a.Fields) > 0 && len(b.Fields) == 0:
		d.significant(base+".fields", "Recipient %s may now receive every field of its categories, not only %s.", b.Name, strings.Join(a.Fields, ", "))
	case len(a.Fields) > 0:
		for _, x := range added(a.Fields, b.Fields) {
			d.significant(base+".fields", "Recipient %s now also receives %s.", b.Name, x)
		}
		if len(added(b.Fields, a.Fields)) > 0 {
			d.minor(base+".fields", "Recipient %s receives fewer fields than before.", b.Name)
		}
	case len(b.Fields) > 0:
		d.minor(base+".fields", "Recipient %s now receives only %s.", b.Name, strings.Join(b.Fields, ", "))
	}
}
