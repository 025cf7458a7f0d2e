package policy

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// IP2LocationAttribution is the line the IP2Location LITE licence asks
// for wherever its data is used; the notice carries it when location comes
// from IP addresses.
const IP2LocationAttribution = "This site uses IP2Location LITE data available from https://lite.ip2location.com"

// Meta is what the notice says about the version it renders.
type Meta struct {
	Number        int
	EffectiveDate time.Time
	Hash          string
	Previous      []VersionRef
	// VersionsPath prefixes links to archived versions; default
	// "/privacy/versions/".
	VersionsPath string
}

// VersionRef names an archived version.
type VersionRef struct {
	Number        int
	EffectiveDate time.Time
	Significant   bool
}

// Render writes the human notice as "markdown" or "html" (a complete
// document; see RenderHTMLBody for the article alone).
func Render(p *Policy, meta Meta, format string) ([]byte, error) {
	v := newNoticeView(p, meta)
	var buf bytes.Buffer
	switch format {
	case "markdown", "md":
		t, err := texttemplate.New("notice.md.tmpl").Funcs(texttemplate.FuncMap{"join": strings.Join}).ParseFS(templateFS, "templates/notice.md.tmpl")
		if err != nil {
			return nil, fmt.Errorf("policy: parse markdown template: %w", err)
		}
		if err := t.Execute(&buf, v); err != nil {
			return nil, fmt.Errorf("policy: render markdown: %w", err)
		}
		// Collapse the blank lines template actions leave behind.
		out := buf.String()
		for strings.Contains(out, "\n\n\n") {
			out = strings.ReplaceAll(out, "\n\n\n", "\n\n")
		}
		return []byte(out), nil
	case "html":
		t, err := htmlTemplates()
		if err != nil {
			return nil, err
		}
		if err := t.ExecuteTemplate(&buf, "document", v); err != nil {
			return nil, fmt.Errorf("policy: render html: %w", err)
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("policy: unknown notice format %q (use markdown or html)", format)
}

// RenderHTMLBody returns the notice as one <article> element, for the web
// layer to place inside its own page layout.
func RenderHTMLBody(p *Policy, meta Meta) (htmltemplate.HTML, error) {
	t, err := htmlTemplates()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "article", newNoticeView(p, meta)); err != nil {
		return "", fmt.Errorf("policy: render html: %w", err)
	}
	return htmltemplate.HTML(buf.String()), nil //nolint:gosec // produced by html/template
}

func htmlTemplates() (*htmltemplate.Template, error) {
	t, err := htmltemplate.New("notice.html.tmpl").Funcs(htmltemplate.FuncMap{"join": strings.Join}).ParseFS(templateFS, "templates/notice.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("policy: parse html template: %w", err)
	}
	return t, nil
}

// The view types hold the notice's text, worded once for both formats.

type noticeView struct {
	Title          string
	Summary        string
	Controller     Controller
	Version        string
	Effective      string
	Number         int
	Hash           string
	Registration   string
	SignIn         []string
	AgeCheck       string
	Categories     []catView
	Purposes       []purposeView
	Builtins       []purposeView
	Recipients     []recipientView
	Transfers      []transferView
	Stores         []storeView
	Retention      []retentionView
	Cookies        []cookieView
	Newsletters    []string
	NoTracking     bool
	Promises       []string
	Statements     []Statement
	Rights         []rightView
	HowToExercise  string
	Verification   string
	Complaint      string
	MinimumAge     int
	Changes        []string
	Analytics      []string
	Attribution    string
	Previous       []prevView
	VersionsPath   string
	HasConsent     bool
	ConsentTitles  []string
	ErasureExempts []string
}

type catView struct {
	ID, Description string
	Fields          []string
	Sources         []string
	Notes           []string
	Retention       string
}

type purposeView struct {
	ID, Description string
	Basis           string
	Uses            []string
	Notice          string
	Notes           []string
	Recipients      []string
}

type recipientView struct {
	Name, Role, Country, Safeguard, Note string
	Purposes, Categories                 []string
}

type transferView struct {
	Country, What, Safeguard, Note string
}

type storeView struct {
	Name, Description string
	Categories        []string
}

type retentionView struct {
	Category, Rule string
}

type cookieView struct {
	Name, Purpose, Lifetime, Kind, SetBy, Note string
}

type rightView struct {
	Name, Text, Note string
}

type prevView struct {
	Number      int
	Date        string
	URL         string
	Significant bool
}

const dateLayout = "2 January 2006"

func newNoticeView(p *Policy, meta Meta) noticeView {
	v := noticeView{
		Title:         p.Title,
		Summary:       p.Summary,
		Controller:    p.Controller,
		Version:       p.Version,
		Number:        meta.Number,
		Hash:          meta.Hash,
		MinimumAge:    p.MinimumAge,
		HowToExercise: p.Rights.HowToExercise,
		NoTracking:    p.Promises.NoTrackingCookies,
		Statements:    p.Statements,
		VersionsPath:  meta.VersionsPath,
	}
	if v.Title == "" {
		v.Title = "Privacy notice of " + p.Controller.Name
	}
	if v.Hash == "" {
		v.Hash = p.Hash()
	}
	if v.VersionsPath == "" {
		v.VersionsPath = "/privacy/versions/"
	}
	eff := meta.EffectiveDate
	if eff.IsZero() {
		eff = p.EffectiveDate()
	}
	if !eff.IsZero() {
		v.Effective = eff.Format(dateLayout)
	} else {
		v.Effective = p.Version
	}
	v.Registration = registrationText(p)
	v.SignIn = signInTexts(p)
	switch p.Registration.AgeCheck {
	case AgeDateOfBirth:
		v.AgeCheck = "We ask for your date of birth at sign-up to check your age."
	case AgeConfirmation:
		v.AgeCheck = "At sign-up you confirm that you are old enough; we do not ask for your date of birth."
	}
	for _, c := range p.categories {
		cv := catView{ID: c.ID, Description: c.Description, Retention: c.Retention.Describe()}
		for _, f := range c.Fields {
			cv.Fields = append(cv.Fields, FieldLabel(f))
		}
		for _, s := range c.Source {
			cv.Sources = append(cv.Sources, sourceLabel(s))
		}
		if len(c.Sensitive) > 0 {
			var ls []string
			for _, f := range c.Sensitive {
				ls = append(ls, FieldLabel(f))
			}
			cv.Notes = append(cv.Notes, "Encrypted with a key that belongs to you alone and is destroyed when this data is erased: "+strings.Join(ls, ", ")+".")
		}
		if c.Payment {
			cv.Notes = append(cv.Notes, "Payment data: used only to take payment, and shown to you on request; no other use may read it. Card numbers are never stored.")
		}
		if c.LegalObligation != "" {
			cv.Notes = append(cv.Notes, "Kept even when you ask us to erase your data, because the law obliges us to: "+c.LegalObligation)
		}
		if slices.ContainsFunc(c.Fields, isActivityField) {
			if c.LinkToAccount {
				cv.Notes = append(cv.Notes, "When you are signed in, this activity is linked to your account and is part of your data (you can see, download and erase it).")
			} else {
				cv.Notes = append(cv.Notes, "This activity is never linked to your account. It is recorded without cookies, and a visitor is counted by a code that changes every day, so your visits cannot be linked from one day to the next.")
			}
		}
		if slices.Contains(c.Source, "ip") {
			g := p.LocationGranularity()
			cv.Notes = append(cv.Notes, fmt.Sprintf("Derived from your IP address only, at most to the %s; the IP address itself is never stored.", g))
		}
		v.Categories = append(v.Categories, cv)
		v.Retention = append(v.Retention, retentionView{Category: c.ID, Rule: c.Retention.Describe()})
	}
	for _, pu := range p.purposes {
		pv := purposeView{ID: pu.ID, Description: pu.Description, Basis: basisText(pu.Basis), Notice: pu.Notice}
		pv.Uses = append(pv.Uses, pu.Uses...)
		if pu.Basis == BasisLegitimateInterest && pu.Interest != "" {
			pv.Notes = append(pv.Notes, "Our legitimate interest: "+pu.Interest+".")
		}
		if pu.Basis == BasisConsent {
			v.HasConsent = true
			v.ConsentTitles = append(v.ConsentTitles, pu.ID)
			pv.Notes = append(pv.Notes, "Only with your consent, which you can withdraw at any time as easily as you gave it.")
		}
		if pu.DirectMarketing {
			pv.Notes = append(pv.Notes, "Direct marketing: an objection stops it at once, without exception.")
		}
		if pu.ThirdPartyMarketing {
			pv.Notes = append(pv.Notes, "Markets products of other companies. A Global Privacy Control signal from your browser counts as an objection.")
		}
		if pu.SaleOrShare {
			pv.Notes = append(pv.Notes, "Shares data with others for their own use. A Global Privacy Control signal from your browser counts as an objection.")
		}
		if pu.AutomatedDecisions {
			pv.Notes = append(pv.Notes, "Involves automated decisions; you may ask for a person to review any such decision.")
		}
		if pu.ID == PaymentPurpose {
			pv.Notes = append(pv.Notes, "The only purpose that may read payment data.")
		}
		for _, r := range p.RecipientsFor(pu.ID) {
			pv.Recipients = append(pv.Recipients, r.Name)
		}
		if pu.Builtin {
			v.Builtins = append(v.Builtins, pv)
		} else {
			v.Purposes = append(v.Purposes, pv)
		}
	}
	for _, r := range p.Recipients {
		rv := recipientView{Name: r.Name, Role: roleText(r.Role), Country: countryLabel(r.Country), Safeguard: safeguardText(r.Safeguard, r.Country), Note: r.Note}
		rv.Purposes = append(rv.Purposes, r.Purposes...)
		rv.Categories = append(rv.Categories, r.Categories...)
		v.Recipients = append(v.Recipients, rv)
	}
	for _, t := range p.Transfers {
		what := "transferred to"
		switch {
		case t.Stores && t.Processes:
			what = "stored and processed in"
		case t.Stores:
			what = "stored in"
		case t.Processes:
			what = "processed in"
		}
		v.Transfers = append(v.Transfers, transferView{Country: countryLabel(t.To), What: what, Safeguard: safeguardText(t.Safeguard, t.To), Note: t.Note})
	}
	for _, s := range p.Stores {
		v.Stores = append(v.Stores, storeView{Name: s.Name, Description: s.Description, Categories: s.Categories})
	}
	for _, c := range p.Cookies {
		set := "first party, set by us"
		if c.SetBy == "partner" {
			set = "set by a partner"
		}
		life := c.Lifetime
		if life == "session" {
			life = "until you close the browser"
		}
		kind := string(c.Kind)
		if c.HTTPOnly {
			kind += ", not readable by scripts"
		}
		v.Cookies = append(v.Cookies, cookieView{Name: c.Name, Purpose: c.Purpose, Lifetime: life, Kind: kind, SetBy: set, Note: c.Note})
	}
	for _, n := range p.Newsletters {
		v.Newsletters = append(v.Newsletters, newsletterText(n))
	}
	v.Promises = promiseTexts(p)
	v.Rights = rightTexts(p)
	if e := p.Rights.Erasure; e != nil {
		for _, ex := range e.Exemptions {
			v.ErasureExempts = append(v.ErasureExempts, exemptionText(ex))
		}
	}
	v.Verification = verificationText(p)
	v.Complaint = complaintText(p.Controller.Authority)
	v.Changes = changesText(p)
	v.Analytics = analyticsText(p)
	if p.UsesIPLocation() {
		v.Attribution = IP2LocationAttribution
	}
	for _, r := range meta.Previous {
		pv := prevView{Number: r.Number, URL: v.VersionsPath + strconv.Itoa(r.Number), Significant: r.Significant}
		if !r.EffectiveDate.IsZero() {
			pv.Date = r.EffectiveDate.Format(dateLayout)
		}
		v.Previous = append(v.Previous, pv)
	}
	return v
}

// orList joins "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// registrationText says what sign-up asks for.
func registrationText(p *Policy) string {
	r := p.Registration
	if len(r.Fields) == 0 {
		return ""
	}
	var all, optional []string
	for _, f := range r.Fields {
		all = append(all, FieldLabel(f))
		if !slices.Contains(r.Required, f) {
			optional = append(optional, FieldLabel(f))
		}
	}
	s := "At sign-up we ask for " + strings.Join(all, "; ") + "."
	if len(optional) > 0 {
		s += " Optional: " + strings.Join(optional, "; ") + "."
	}
	return s + " Sign-up accepts nothing else."
}

// signInTexts say, for each service people may sign in with, what a
// sign-in imports from it.
func signInTexts(p *Policy) []string {
	var out []string
	for _, ip := range p.IdentityProviders {
		out = append(out, fmt.Sprintf("You may sign in with %s instead of a password. We then receive from %s only %s; whatever else it offers is discarded before anything is stored, and what we keep is recorded as coming from %s. "+
			"If an account here already uses the address %s gives, the two are linked only once you enter that account's password.",
			ip.Name, ip.Name, ip.Imports(), ip.Name, ip.Name))
	}
	return out
}

// andList joins "a, b and c".
func andList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func basisText(b Basis) string {
	switch b {
	case BasisConsent:
		return "your consent (GDPR Art. 6(1)(a))"
	case BasisContract:
		return "our contract with you: we need it to provide what you asked for (Art. 6(1)(b))"
	case BasisLegitimateInterest:
		return "our legitimate interest, which you may object to (Art. 6(1)(f))"
	case BasisLegalObligation:
		return "a legal obligation (Art. 6(1)(c))"
	case BasisVitalInterest:
		return "protecting someone's vital interests (Art. 6(1)(d))"
	case BasisPublicTask:
		return "a task in the public interest (Art. 6(1)(e))"
	case BasisAsCollected:
		return "the basis under which each item was collected"
	}
	return string(b)
}

func roleText(r Role) string {
	switch r {
	case RoleProcessor:
		return "processor, acting only on our instructions and barred from any other use"
	case RolePartner:
		return "partner"
	case RoleAuthority:
		return "public authority"
	case RoleAcquirer:
		return "acquirer in a merger or sale"
	case RoleController:
		return "independent controller"
	}
	return string(r)
}

func safeguardText(s Safeguard, country string) string {
	switch s {
	case SafeguardAdequacy:
		return "an adequacy decision of the European Commission"
	case SafeguardSCC:
		return "standard contractual clauses"
	case SafeguardBCR:
		return "binding corporate rules"
	case SafeguardConsent:
		return "your explicit consent"
	}
	if inEEA(country) {
		return "none needed (inside the EEA)"
	}
	return "none"
}

func exemptionText(e Exemption) string {
	switch e {
	case ExemptArchive:
		return "records kept for archiving in the public interest, scientific or historical research (GDPR Art. 89), such as published works"
	case ExemptLegalObligation:
		return "records the law requires us to keep, such as invoices and proof of consent"
	case ExemptLegalHold:
		return "data under a legal hold, while the hold lasts (we record why)"
	case ExemptLegalClaims:
		return "data needed to establish, exercise or defend legal claims"
	case ExemptExpression:
		return "data needed for freedom of expression and information"
	case ExemptPublicInterest:
		return "data needed for a task in the public interest"
	}
	return string(e)
}

func rightTexts(p *Policy) []rightView {
	var out []rightView
	r := p.Rights
	if r.Access != nil {
		out = append(out, rightView{"Access", "You may ask whether we process data about you, get a copy of it, and learn what it is used for, who received it, how long it is kept and where it came from (Art. 15).", r.Access.Note})
	}
	if r.Portability != nil {
		out = append(out, rightView{"Portability", "You may receive the data you gave us under our contract or your consent in a structured, machine-readable form (JSON and CSV in a ZIP file), and ask us to send it to another party where that is technically feasible (Art. 20).", r.Portability.Note})
	}
	if r.Rectification != nil {
		text := "You may have inaccurate data corrected and incomplete data completed (Art. 16)."
		var self []string
		for _, c := range p.categories {
			for _, f := range c.SelfEditable {
				self = append(self, FieldLabel(f))
			}
		}
		if len(self) > 0 {
			text += " You can correct " + strings.Join(self, ", ") + " yourself at any time."
		}
		text += " For anything else, tell us why it is wrong; we review it, and you may ask us to restrict processing while we do."
		out = append(out, rightView{"Correction", text, r.Rectification.Note})
	}
	if r.Restriction != nil {
		out = append(out, rightView{"Restriction", "You may ask us to restrict processing (Art. 18). While it lasts we only store the data, use it for legal claims and security, and answer your requests; we tell you before we lift it.", r.Restriction.Note})
	}
	if r.Objection != nil {
		out = append(out, rightView{"Objection", "You may object to processing based on our legitimate interest; tell us why, and we stop unless we have compelling grounds or need it for legal claims, which we will explain. An objection to direct marketing, including profiling for it, always stops it at once (Art. 21).", r.Objection.Note})
	}
	if e := r.Erasure; e != nil {
		var scopes []string
		for _, s := range e.Scopes {
			switch s {
			case ScopeAccount:
				scopes = append(scopes, "your whole account")
			case ScopeCategory:
				scopes = append(scopes, "specific information")
			case ScopeItem:
				scopes = append(scopes, "a single item")
			case ScopeContent:
				scopes = append(scopes, "all your content")
			}
		}
		text := "You may ask us to erase " + strings.Join(scopes, ", ") + " (Art. 17)."
		if len(e.Exemptions) > 0 {
			text += " Some data survives erasure, and we tell you which and why: see the exceptions below."
		}
		out = append(out, rightView{"Erasure", text, e.Note})
	}
	if slices.ContainsFunc(p.purposes, func(pu *Purpose) bool { return pu.Basis == BasisConsent }) {
		out = append(out, rightView{"Withdrawing consent", "Where we rely on your consent you may withdraw it at any time, as easily as you gave it; what we did before stays lawful (Art. 7(3)).", ""})
	}
	return out
}

func verificationText(p *Policy) string {
	v := p.Verification
	return fmt.Sprintf("Before we answer a request we make sure it is yours: members sign in again (or give their password), and people without an account confirm a code we email to them, valid for %s with at most %d attempts. If we refuse a request, we tell you why.",
		humanDuration(p.CodeTTL()), v.MaxAttempts)
}

func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + " minutes"
	}
	return d.String()
}

func complaintText(a Authority) string {
	s := "You may complain to a supervisory authority"
	if a.Name != "" {
		s += ", such as " + a.Name
	}
	s += "."
	if a.Complaint != "" {
		s += " " + a.Complaint
	}
	return s
}

func changesText(p *Policy) []string {
	var out []string
	switch p.Changes.Notify {
	case "email":
		out = append(out, "We announce significant changes by email to every member and subscriber.")
	case "notice":
		out = append(out, "We announce significant changes with a prominent notice on our site.")
	case "email-and-notice":
		out = append(out, "We announce significant changes by email and with a prominent notice on our site.")
	}
	if p.Changes.NoticeDays > 0 {
		out = append(out, fmt.Sprintf("We announce them at least %d days before they take effect.", p.Changes.NoticeDays))
	}
	if p.Changes.SignificantRequiresConsent {
		out = append(out, "We will not reduce your rights under this notice without your explicit consent: until you accept such a change, the stricter of the old and the new version applies to you.")
	}
	out = append(out, "Every version is dated and archived, and you can read each one.")
	return out
}

func newsletterText(n Newsletter) string {
	s := n.Name
	if n.Description != "" {
		s += ": " + strings.TrimSuffix(n.Description, ".")
	}
	s += ". Sent only if you subscribe"
	if n.DoubleOptIn {
		s += " and confirm by the link we email you"
	}
	s += ". Every mail carries a link that unsubscribes you in one click, without signing in; you can also ask us to unsubscribe you."
	switch {
	case n.TrackOpens && n.TrackClicks:
		s += " We record whether you open it and which links you follow only if you consent to that."
	case n.TrackOpens:
		s += " We record whether you open it only if you consent to that."
	case n.TrackClicks:
		s += " We record which links you follow only if you consent to that."
	default:
		s += " We do not record whether you open it or which links you follow."
	}
	return s
}

func analyticsText(p *Policy) []string {
	var out []string
	if c := p.fieldCat["page"]; c == nil {
		return nil
	}
	a := p.Analytics
	s := fmt.Sprintf("Reports we share outside (with partners or the public) are aggregated and anonymised: any group of fewer than %d visitors is left out.", a.KAnonymity)
	if a.DPEpsilon > 0 {
		s += fmt.Sprintf(" Counts also carry calibrated random noise (differential privacy, epsilon %g per report).", a.DPEpsilon)
	}
	out = append(out, s)
	if a.PublicTrends {
		out = append(out, "We publish such anonymised trends.")
	}
	return out
}

func promiseTexts(p *Policy) []string {
	pr := p.Promises
	var out []string
	add := func(on bool, s string) {
		if on {
			out = append(out, s)
		}
	}
	add(pr.NoTrackingCookies, "We use no tracking cookies of any kind: only the functional cookies listed here.")
	add(pr.NoSale, "We do not sell or share your personal data.")
	add(pr.NoSharingWithoutConsent, "We share your personal data outside our organisation only with your consent (explicit consent for sensitive data) or for legal reasons.")
	add(pr.MarketingOnlyWithConsent, "We market to you only with your consent.")
	add(pr.LocationFromIPOnly, "We determine your location only from your IP address, and we do not store the address.")
	add(pr.ActivityNotLinked, "Your activity on our sites is never linked to your account.")
	add(pr.NoAutomatedDecisions, "We make no decisions about you by automated means alone.")
	add(pr.SharedReportsAnonymised, "What we share about the use of our services is aggregated and anonymised.")
	add(slices.ContainsFunc(p.categories, func(c *Category) bool { return c.Payment }), "Payment information is used only to take payment.")
	return out
}
