// Package policy owns the privacy policy as code: the schema of the policy
// file, its strict loader and checker, the runtime guard compiled from it,
// the human notice rendered from it, the classification of changes between
// two versions, and the archive of published versions (table
// policy_versions).
//
// Built-in purposes exist in every policy and cannot be declared:
//
//   - subject-request: the subject's own access, export, correction and
//     erasure. It may read every category, payment data included, and is
//     never stopped by a restriction, objection or missing consent.
//   - security: keeping accounts and the service secure.
//   - legal-claims: establishing, exercising or defending legal claims.
//   - storage: keeping data as the retention rules say, nothing more.
//
// security, legal-claims and storage may use every category except
// payment categories. Storage and legal-claims still hold payment data —
// the retention rules keep it, and erasure exemptions may keep it — but
// holding is not reading: the guard lets only the declared purpose
// "payment" and subject-request read a payment category (promise J9).
// While a subject's processing is restricted (Art. 18), only these four
// built-ins are allowed on the restricted categories.
package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Names of the built-in purposes and the purpose with special meaning.
const (
	SubjectRequest = "subject-request"
	Security       = "security"
	LegalClaims    = "legal-claims"
	Storage        = "storage"
	// PaymentPurpose is the one declared purpose that may read payment
	// categories.
	PaymentPurpose = "payment"
	// DirectMarketing is a reserved objection key: an objection recorded
	// under it stops every direct-marketing purpose (Art. 21(2)).
	DirectMarketing = "direct-marketing"
)

// IsBuiltin reports whether id names a built-in purpose.
func IsBuiltin(id string) bool {
	switch id {
	case SubjectRequest, Security, LegalClaims, Storage:
		return true
	}
	return false
}

// maxPolicySize bounds what Parse reads; real policies are a few KB.
const maxPolicySize = 1 << 20

// Policy is a parsed, checked policy. It is read-only once Parse returns it
// and safe for concurrent use.
type Policy struct {
	Controller   Controller
	Version      string // the effective date, YYYY-MM-DD
	Title        string
	Summary      string
	MinimumAge   int
	Registration Registration
	Recipients   []*Recipient
	Transfers    []Transfer
	Stores       []Store
	Rights       Rights
	Verification Verification
	Changes      Changes
	Cookies      []Cookie
	Promises     Promises
	Statements   []Statement
	Analytics    Analytics
	Sites        []Site
	Newsletters  []Newsletter
	Staff        []*StaffRole
	// IdentityProviders are the services people may sign in with, and
	// what each may import.
	IdentityProviders []IdentityProvider

	categories []*Category
	purposes   []*Purpose // declared in file order, then the built-ins
	declared   []*Purpose // as written, built-in names included, for Check
	catByID    map[string]*Category
	purByID    map[string]*Purpose
	fieldCat   map[string]*Category
	retention  map[string]*Retention // as written, including unknown keys
	file       string
	raw        []byte
	hash       string
	effective  time.Time
	at         map[string]pos
	bad        map[string]bool // paths the decoder already reported
}

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Parse(path, data)
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+):`)

// Parse decodes and checks a policy. On any problem it returns a
// *Problems listing all of them.
func Parse(filename string, data []byte) (*Policy, error) {
	return parse(filename, data, true)
}

// parseArchived reads a version that passed Check when it was published.
// Checks added to Steward since then must not make an archived version
// unreadable (promise M16), so only the decoding has to succeed.
func parseArchived(filename string, data []byte) (*Policy, error) {
	return parse(filename, data, false)
}

func parse(filename string, data []byte, check bool) (*Policy, error) {
	d := newDecoder(filename)
	if len(data) > maxPolicySize {
		d.add(nil, "", fmt.Sprintf("the policy file is %d bytes; at most %d are read", len(data), maxPolicySize), "split long texts or remove what is not policy")
		return nil, &Problems{List: d.probs}
	}
	root, err := parseYAML(data)
	if err != nil {
		p := Problem{File: filename, Line: 1, Message: err.Error(), Fix: "correct the YAML syntax"}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Message = "YAML syntax: " + strings.TrimSpace(err.Error()[len(m[0]):])
		}
		return nil, &Problems{List: []Problem{p}}
	}
	var doc document
	d.decode(root, "", reflect.ValueOf(&doc).Elem())
	p := build(&doc, filename, data, d.at)
	p.bad = map[string]bool{}
	for _, pr := range d.probs {
		p.bad[pr.Path] = true
	}
	probs := d.probs
	if check {
		probs = append(probs, p.Check()...)
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool {
			if probs[i].Line != probs[j].Line {
				return probs[i].Line < probs[j].Line
			}
			return probs[i].Column < probs[j].Column
		})
		return nil, &Problems{List: probs}
	}
	canon, err := p.canonical()
	if err != nil {
		return nil, fmt.Errorf("policy: canonical form: %w", err)
	}
	sum := sha256.Sum256(canon)
	p.hash = hex.EncodeToString(sum[:])
	return p, nil
}

// parseYAML reads exactly one YAML document and returns its top node.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The YAML library is not expected to panic, but a policy file is
		// input: a crash here must become a problem, not take down serve.
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("the file cannot be read as YAML (%v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the policy file is empty")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("line %d: the file holds more than one YAML document (a second \"---\")", max(extra.Line, 1))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("the policy file is empty")
	}
	return doc.Content[0], nil
}

func build(doc *document, file string, raw []byte, at map[string]pos) *Policy {
	p := &Policy{
		Controller:        doc.Controller,
		Version:           doc.Version,
		Title:             doc.Title,
		Summary:           doc.Summary,
		MinimumAge:        doc.MinimumAge,
		Registration:      doc.Registration,
		Recipients:        doc.Recipients,
		Transfers:         doc.Transfers,
		Stores:            doc.Stores,
		Rights:            doc.Rights,
		Verification:      doc.Verification,
		Changes:           doc.Changes,
		Cookies:           doc.Cookies,
		Promises:          doc.Promises,
		Statements:        doc.Statements,
		Analytics:         doc.Analytics,
		Sites:             doc.Sites,
		Newsletters:       doc.Newsletters,
		Staff:             doc.Staff,
		IdentityProviders: doc.IdentityProviders,
		categories:        doc.Categories,
		retention:         doc.Retention,
		file:              file,
		raw:               bytes.Clone(raw),
		at:                at,
		catByID:           map[string]*Category{},
		purByID:           map[string]*Purpose{},
		fieldCat:          map[string]*Category{},
	}
	p.applyDefaults()
	for _, c := range p.categories {
		if _, dup := p.catByID[c.ID]; !dup {
			p.catByID[c.ID] = c
		}
		if r := p.retention[c.ID]; r != nil {
			c.Retention = *r
		}
		for _, f := range c.Fields {
			if _, dup := p.fieldCat[f]; !dup {
				p.fieldCat[f] = c
			}
		}
	}
	if p.Analytics.LocationGranularity == "" {
		// Reports show location at most by country unless the policy asks
		// for finer, and never finer than the policy collects.
		p.Analytics.LocationGranularity = GranularityCountry
		if p.LocationGranularity().rank() < GranularityCountry.rank() {
			p.Analytics.LocationGranularity = GranularityNone
		}
	}
	for _, pu := range doc.Purposes {
		if IsBuiltin(pu.ID) {
			continue // Check reports it; the built-in definition wins
		}
		p.purposes = append(p.purposes, pu)
		p.purByID[pu.ID] = pu
	}
	for _, b := range builtinPurposes(p.categories) {
		p.purposes = append(p.purposes, b)
		p.purByID[b.ID] = b
	}
	p.declared = doc.Purposes
	if t, err := time.Parse(time.DateOnly, p.Version); err == nil {
		p.effective = t
	}
	return p
}

// applyDefaults fills what a policy may leave out, and turns absent lists
// into empty ones so the JSON form has [] rather than null.
func (p *Policy) applyDefaults() {
	v := &p.Verification
	if v.Members == "" {
		v.Members = "reauthenticate"
	}
	if v.Others == "" {
		v.Others = "email-code"
	}
	if v.CodeTTL == "" {
		v.CodeTTL = "30m"
	}
	if v.MaxAttempts == 0 {
		v.MaxAttempts = 5
	}
	if p.Changes.Notify == "" {
		p.Changes.Notify = "email"
	}
	if p.Registration.AgeCheck == "" {
		p.Registration.AgeCheck = AgeConfirmation
	}
	a := &p.Analytics
	if a.KAnonymity == 0 {
		a.KAnonymity = 10
	}
	if a.SearchParam == "" {
		a.SearchParam = "q"
	}
	for _, c := range p.categories {
		c.Fields = nonNil(c.Fields)
		c.SelfEditable = nonNil(c.SelfEditable)
		c.Sensitive = nonNil(c.Sensitive)
		c.Source = nonNil(c.Source)
	}
	for _, r := range p.Recipients {
		r.Purposes = nonNil(r.Purposes)
		r.Categories = nonNil(r.Categories)
	}
	for i := range p.Stores {
		p.Stores[i].Categories = nonNil(p.Stores[i].Categories)
	}
	for i := range p.Sites {
		p.Sites[i].Origins = nonNil(p.Sites[i].Origins)
	}
	p.Registration.Fields = nonNil(p.Registration.Fields)
	p.Registration.Required = nonNil(p.Registration.Required)
	if e := p.Rights.Erasure; e != nil {
		e.Exemptions = nonNil(e.Exemptions)
		if len(e.Scopes) == 0 {
			e.Scopes = []ErasureScope{ScopeAccount, ScopeCategory, ScopeItem, ScopeContent}
		}
	}
	p.Recipients = nonNil(p.Recipients)
	p.Transfers = nonNil(p.Transfers)
	p.Stores = nonNil(p.Stores)
	p.Cookies = nonNil(p.Cookies)
	p.Statements = nonNil(p.Statements)
	p.Sites = nonNil(p.Sites)
	p.Newsletters = nonNil(p.Newsletters)
	for i := range p.IdentityProviders {
		p.IdentityProviders[i].Claims = nonNil(p.IdentityProviders[i].Claims)
	}
	p.IdentityProviders = nonNil(p.IdentityProviders)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func builtinPurposes(cats []*Category) []*Purpose {
	var all, nonPayment []string
	for _, c := range cats {
		all = append(all, c.ID)
		if !c.Payment {
			nonPayment = append(nonPayment, c.ID)
		}
	}
	all, nonPayment = nonNil(all), nonNil(nonPayment)
	return []*Purpose{
		{ID: SubjectRequest, Builtin: true, Basis: BasisLegalObligation, Uses: all,
			Description: "Answering your own requests: access to your data, a copy to take elsewhere, correction, restriction, objection and erasure."},
		{ID: Security, Builtin: true, Basis: BasisLegitimateInterest, Uses: nonPayment,
			Description: "Keeping your account and the service secure: detecting and stopping fraud, abuse and attacks.",
			Interest:    "protecting our users and our systems from harm"},
		{ID: LegalClaims, Builtin: true, Basis: BasisLegitimateInterest, Uses: nonPayment,
			Description: "Establishing, exercising or defending legal claims.",
			Interest:    "being able to defend ourselves and others in legal proceedings"},
		{ID: Storage, Builtin: true, Basis: BasisAsCollected, Uses: nonPayment,
			Description: "Keeping data for as long as the retention rules below allow, and nothing else; this is all that continues while you have restricted our processing."},
	}
}

// File is the name the policy was parsed from.
func (p *Policy) File() string { return p.file }

// Raw returns the file as given.
func (p *Policy) Raw() []byte { return p.raw }

// Hash is the hex SHA-256 of the policy's canonical form: comments and
// layout do not change it, any change of meaning does.
func (p *Policy) Hash() string { return p.hash }

// EffectiveDate is the version date as midnight UTC.
func (p *Policy) EffectiveDate() time.Time { return p.effective }

// Categories returns the categories in file order.
func (p *Policy) Categories() []*Category { return p.categories }

// Category returns the category with the id, or nil.
func (p *Policy) Category(id string) *Category { return p.catByID[id] }

// Purposes returns the declared purposes in file order, then the
// built-ins.
func (p *Policy) Purposes() []*Purpose { return p.purposes }

// Purpose returns the purpose with the id (declared or built-in), or nil.
func (p *Policy) Purpose(id string) *Purpose { return p.purByID[id] }

// CategoryOfField returns the id of the category that declares field, or
// "" when the policy does not declare it (then nothing may be stored in
// it).
func (p *Policy) CategoryOfField(field string) string {
	if c := p.fieldCat[field]; c != nil {
		return c.ID
	}
	return ""
}

// Fields returns every declared field, in category order.
func (p *Policy) Fields() []string {
	var out []string
	for _, c := range p.categories {
		out = append(out, c.Fields...)
	}
	return out
}

// IsSensitiveField reports whether field is encrypted per subject.
func (p *Policy) IsSensitiveField(field string) bool {
	c := p.fieldCat[field]
	return c != nil && slices.Contains(c.Sensitive, field)
}

// SelfEditable reports whether the subject may correct field at once.
func (p *Policy) SelfEditable(field string) bool {
	c := p.fieldCat[field]
	return c != nil && slices.Contains(c.SelfEditable, field)
}

// Retention returns the rule for a category.
func (p *Policy) Retention(category string) (Retention, bool) {
	c := p.catByID[category]
	if c == nil || !c.Retention.IsSet() {
		return Retention{}, false
	}
	return c.Retention, true
}

// Recipient returns the recipient with the id, or nil.
func (p *Policy) Recipient(id string) *Recipient {
	for _, r := range p.Recipients {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// RecipientsFor returns the recipients declared for a purpose.
func (p *Policy) RecipientsFor(purpose string) []*Recipient {
	var out []*Recipient
	for _, r := range p.Recipients {
		if slices.Contains(r.Purposes, purpose) {
			out = append(out, r)
		}
	}
	return out
}

// Newsletter returns the list with the id, or nil.
func (p *Policy) Newsletter(id string) *Newsletter {
	for i := range p.Newsletters {
		if p.Newsletters[i].ID == id {
			return &p.Newsletters[i]
		}
	}
	return nil
}

// IdentityProvider returns the sign-in provider with the id, or nil.
func (p *Policy) IdentityProvider(id string) *IdentityProvider {
	for i := range p.IdentityProviders {
		if p.IdentityProviders[i].ID == id {
			return &p.IdentityProviders[i]
		}
	}
	return nil
}

// Site returns the site with the id, or nil.
func (p *Policy) Site(id string) *Site {
	for i := range p.Sites {
		if p.Sites[i].ID == id {
			return &p.Sites[i]
		}
	}
	return nil
}

// Cookie returns the declared cookie with the name, or nil. Steward sets
// no cookie the policy does not declare.
func (p *Policy) Cookie(name string) *Cookie {
	for i := range p.Cookies {
		if p.Cookies[i].Name == name {
			return &p.Cookies[i]
		}
	}
	return nil
}

// StaffRoles are the staff roles the policy declares, with the purposes
// each may name.
func (p *Policy) StaffRoles() []*StaffRole { return p.Staff }

// StaffRole returns a staff role's declaration, or nil.
func (p *Policy) StaffRole(id string) *StaffRole {
	for _, r := range p.Staff {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// GPCPurposes returns the purposes a Global Privacy Control signal opts
// out of: sale or sharing, and third-party marketing.
func (p *Policy) GPCPurposes() []string {
	var out []string
	for _, pu := range p.purposes {
		if pu.SaleOrShare || pu.ThirdPartyMarketing {
			out = append(out, pu.ID)
		}
	}
	return out
}

// ConsentPurposes returns the purposes whose basis is consent.
func (p *Policy) ConsentPurposes() []*Purpose {
	var out []*Purpose
	for _, pu := range p.purposes {
		if pu.Basis == BasisConsent {
			out = append(out, pu)
		}
	}
	return out
}

// LinksActivityToAccount reports whether page views of signed-in members
// are linked to their account: the category holding field "page" says
// link_to_account and a declared purpose uses it.
func (p *Policy) LinksActivityToAccount() bool {
	c := p.fieldCat["page"]
	if c == nil || !c.LinkToAccount {
		return false
	}
	for _, pu := range p.purposes {
		if !pu.Builtin && slices.Contains(pu.Uses, c.ID) {
			return true
		}
	}
	return false
}

// LocationGranularity is the finest IP-derived location the policy allows
// to be kept: the location category's granularity, or none when it
// declares no location fields.
func (p *Policy) LocationGranularity() Granularity {
	c := p.fieldCat["country"]
	if c == nil {
		return GranularityNone
	}
	if c.Granularity != "" {
		return c.Granularity
	}
	g := GranularityCountry
	if slices.Contains(c.Fields, "region") {
		g = GranularityRegion
	}
	if slices.Contains(c.Fields, "city") {
		g = GranularityCity
	}
	return g
}

// UsesIPLocation reports whether location is derived from IP addresses
// (the notice then carries the IP2Location attribution).
func (p *Policy) UsesIPLocation() bool {
	c := p.fieldCat["country"]
	return c != nil && slices.Contains(c.Source, "ip")
}

// Offers reports whether a right is offered: access, portability,
// rectification, restriction, objection or erasure.
func (p *Policy) Offers(right string) bool {
	r := p.Rights
	switch right {
	case "access":
		return r.Access != nil
	case "portability":
		return r.Portability != nil
	case "rectification":
		return r.Rectification != nil
	case "restriction":
		return r.Restriction != nil
	case "objection":
		return r.Objection != nil
	case "erasure":
		return r.Erasure != nil
	}
	return false
}

// Exempts reports whether erasure keeps data for the exemption.
func (p *Policy) Exempts(e Exemption) bool {
	return p.Rights.Erasure != nil && slices.Contains(p.Rights.Erasure.Exemptions, e)
}

// RegistrationAccepts reports whether sign-up accepts field.
func (p *Policy) RegistrationAccepts(field string) bool {
	return slices.Contains(p.Registration.Fields, field)
}

// RegistrationRequires reports whether sign-up requires field.
func (p *Policy) RegistrationRequires(field string) bool {
	return slices.Contains(p.Registration.Required, field)
}

// CodeTTL is how long an emailed verification code is valid.
func (p *Policy) CodeTTL() time.Duration {
	d, err := time.ParseDuration(p.Verification.CodeTTL)
	if err != nil || d <= 0 {
		return 30 * time.Minute
	}
	return d
}

// jsonView is the policy's JSON shape (GET /api/v1/policy) and, without
// the hash, its canonical form.
type jsonView struct {
	Controller   Controller   `json:"controller"`
	Version      string       `json:"version"`
	Title        string       `json:"title,omitempty"`
	Summary      string       `json:"summary,omitempty"`
	MinimumAge   int          `json:"minimum_age"`
	Registration Registration `json:"registration"`
	Categories   []*Category  `json:"categories"`
	Purposes     []*Purpose   `json:"purposes"`
	Recipients   []*Recipient `json:"recipients"`
	Transfers    []Transfer   `json:"transfers"`
	Stores       []Store      `json:"stores"`
	Rights       Rights       `json:"rights"`
	Verification Verification `json:"verification"`
	Changes      Changes      `json:"changes"`
	Cookies      []Cookie     `json:"cookies"`
	Promises     Promises     `json:"promises"`
	Statements   []Statement  `json:"statements"`
	Analytics    Analytics    `json:"analytics"`
	Sites        []Site       `json:"sites"`
	Newsletters  []Newsletter `json:"newsletters"`
	Staff        []*StaffRole `json:"staff,omitempty"`
	Hash         string       `json:"hash,omitempty"`
}

func (p *Policy) view() jsonView {
	return jsonView{
		Controller: p.Controller, Version: p.Version, Title: p.Title, Summary: p.Summary,
		MinimumAge: p.MinimumAge, Registration: p.Registration, Categories: nonNil(p.categories),
		Purposes: nonNil(p.purposes), Recipients: p.Recipients, Transfers: p.Transfers, Stores: p.Stores,
		Rights: p.Rights, Verification: p.Verification, Changes: p.Changes, Cookies: p.Cookies,
		Promises: p.Promises, Statements: p.Statements, Analytics: p.Analytics, Sites: p.Sites,
		Newsletters: p.Newsletters, Staff: p.Staff,
	}
}

// canonical is the form the hash covers: the compiled meaning, not the
// file's comments or layout.
func (p *Policy) canonical() ([]byte, error) {
	return json.Marshal(p.view())
}

// MarshalJSON writes the compiled policy, built-in purposes and the hash
// included.
func (p *Policy) MarshalJSON() ([]byte, error) {
	v := p.view()
	v.Hash = p.hash
	return json.Marshal(v)
}
