package policy

import (
	"testing"
)

// policyHead is what every seed shares: the controller, a version and
// one category with the purpose and retention it needs.
const policyHead = `controller: {name: Example, contact: privacy@example.org, authority: {name: Example Authority}}
version: 2026-01-01
minimum_age: 16
`

// fuzzSeeds are small policies, a few hundred bytes each, that between
// them cover the policy's main sections. The example policies (10–20 KB)
// made each execution slow and their minimisation took the whole run.
var fuzzSeeds = []string{
	policyHead + `categories:
  identity: {description: Who you are., fields: [name, email, password], source: [subject]}
purposes:
  provide-service: {description: Your account., basis: contract, uses: [identity]}
retention: {identity: account-lifetime}
`,
	policyHead + `registration: {fields: [name, email, password, phone, date_of_birth], required: [email, password], age_check: date_of_birth}
categories:
  identity:
    description: Who you are.
    fields: [name, email, password, phone, date_of_birth]
    self_editable: [name, phone]
    sensitive: [phone, date_of_birth]
    source: [subject, form]
purposes:
  provide-service: {description: Your account., basis: contract, uses: [identity]}
retention: {identity: account-lifetime}
`,
	policyHead + `categories:
  identity: {description: Who you are., fields: [name, email, password], source: [subject]}
  consent-record: {description: Your choices., fields: [consent], source: [subject]}
purposes:
  provide-service: {description: Your account., basis: contract, uses: [identity]}
  marketing: {description: Offers., basis: consent, direct_marketing: true, notice: Send me offers., uses: [identity]}
  fraud: {description: Stopping fraud., basis: legitimate-interest, interest: stopping fraud, uses: [identity]}
  consent-proof: {description: Proof., basis: legal-obligation, uses: [consent-record]}
retention: {identity: account-lifetime + 3 years, consent-record: 6 years}
rights: {objection: {}}
`,
	policyHead + `categories:
  identity: {description: Who you are., fields: [name, email, password], source: [subject]}
purposes:
  provide-service: {description: Your account., basis: contract, uses: [identity]}
retention: {identity: account-lifetime}
recipients:
  - {id: host, name: Hosting, role: processor, country: US, purposes: [provide-service], categories: [identity], safeguard: SCC}
transfers:
  - {to: US, stores: true, processes: true, safeguard: SCC}
stores:
  - {id: db, name: Database, categories: [identity]}
`,
	policyHead + `categories:
  identity: {description: Who you are., fields: [name, email, password], source: [subject]}
purposes:
  provide-service: {description: Your account., basis: contract, uses: [identity]}
retention: {identity: account-lifetime}
rights:
  access: {note: Ask us.}
  restriction: {}
  erasure: {exemptions: [legal-obligation], scopes: [account, category]}
  how_to_exercise: Use the privacy centre.
verification: {members: reauthenticate, others: email-code, code_ttl: 30m, max_attempts: 5}
changes: {notify: email-and-notice, significant_requires_consent: true, notice_days: 30}
`,
	policyHead + `categories:
  identity: {description: Who you are., fields: [name, email, password, session], source: [subject]}
purposes:
  provide-service: {description: Your account., basis: contract, uses: [identity]}
retention: {identity: account-lifetime}
cookies:
  - {name: sid, purpose: provide-service, lifetime: 30 days, kind: functional, first_party: true, set_by: steward, http_only: true}
promises: {no_sale: true, no_tracking_cookies: true, marketing_only_with_consent: true}
statements:
  - {id: S1, title: Security, text: We encrypt what we keep.}
`,
	policyHead + `categories:
  identity: {description: Who you are., fields: [name, email, password], source: [subject]}
  activity: {description: Pages you view., fields: [page, referrer, search_terms], link_to_account: true, source: [observed]}
  location: {description: Your country., fields: [country], granularity: country, source: [ip]}
purposes:
  provide-service: {description: Your account., basis: contract, uses: [identity]}
  analytics: {description: Statistics., basis: legitimate-interest, interest: knowing what is read, uses: [activity, location]}
retention: {identity: account-lifetime, activity: 13 months, location: 13 months}
rights: {objection: {}}
analytics: {search_param: q, k_anonymity: 10, dp_epsilon: 1.0, public_trends: true, location_granularity: country}
sites:
  - {id: demo, origins: [https://example.org], time_zone: Europe/Paris}
`,
	policyHead + `categories:
  identity: {description: Who you are., fields: [name, email, password], source: [subject]}
  newsletters: {description: Your subscriptions., fields: [subscription], source: [subject]}
  payment: {description: Payments., fields: [card_token, billing_address], sensitive: [card_token], payment: true, source: [subject]}
purposes:
  provide-service: {description: Your account., basis: contract, uses: [identity]}
  payment: {description: Taking payment., basis: contract, uses: [identity, payment]}
  news: {description: Our newsletter., basis: consent, direct_marketing: true, notice: Send me the newsletter., uses: [identity, newsletters]}
retention: {identity: account-lifetime, newsletters: account-lifetime, payment: 10 years}
rights: {objection: {}}
newsletters:
  - {id: weekly, name: Weekly, purpose: news, double_opt_in: true, track_opens: false}
`,
	"a: &x [*x]\n",
	"categories: {a: {fields: [name]}}\nretention: {a: 1 year}\n",
	"\xff\xfe",
}

// FuzzParse feeds arbitrary bytes to the loader: it must never panic, and a
// policy it accepts must pass its own check, render, and compare to itself.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if probs := p.Check(); len(probs) != 0 {
			t.Fatalf("accepted policy has problems: %v", probs)
		}
		if _, err := Render(p, Meta{}, "markdown"); err != nil {
			t.Fatalf("Render markdown: %v", err)
		}
		if _, err := Render(p, Meta{}, "html"); err != nil {
			t.Fatalf("Render html: %v", err)
		}
		if c := Diff(p, p); len(c.Items) != 0 {
			t.Fatalf("policy differs from itself: %v", c)
		}
		g := NewGuard(p, nil)
		for _, pu := range p.Purposes() {
			for _, c := range p.Categories() {
				g.Decide(pu.ID, c.ID, &State{Restricted: true})
			}
		}
	})
}

// TestFuzzSeedsParse: the seeds other than the broken ones are policies
// the loader accepts, so the fuzzer starts from the accepted branch.
func TestFuzzSeedsParse(t *testing.T) {
	for i, s := range fuzzSeeds[:len(fuzzSeeds)-3] {
		if len(s) > 1000 {
			t.Errorf("seed %d is %d bytes; keep seeds small", i, len(s))
		}
		if _, err := Parse("seed.yaml", []byte(s)); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}
