package policy

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	type repl struct{ old, new string }
	tests := []struct {
		name        string
		base        string // example file
		edits       []repl
		significant bool
		reduces     bool
		reason      string // a reason that must be given
	}{
		{
			name: "identical", base: "jmir.yaml",
		},
		{
			name: "wording only", base: "mixi.yaml",
			edits:  []repl{{"description: Questions and requests you send us, and our answers.", "description: Questions you send us and our replies."}},
			reason: "The description of category support was reworded.",
		},
		{
			name: "a partner receives one more field", base: "jmir.yaml",
			edits:       []repl{{"    fields: [name, email]\n    webhook:", "    fields: [name, email, phone]\n    webhook:"}},
			significant: true,
			reason:      "Recipient Third parties you buy from through one of our brands now also receives phone.",
		},
		{
			name: "a partner receives fewer fields", base: "jmir.yaml",
			edits:  []repl{{"    fields: [name, email]\n    webhook:", "    fields: [email]\n    webhook:"}},
			reason: "Recipient Third parties you buy from through one of our brands receives fewer fields than before.",
		},
		{
			name: "contact details", base: "jmir.yaml",
			edits:  []repl{{"contact: privacy@jmir.example", "contact: dpo@jmir.example"}},
			reason: "The controller's contact details changed.",
		},
		{
			name: "shorter retention is minor", base: "mixi.yaml",
			edits:  []repl{{"  activity: 13 months", "  activity: 6 months"}},
			reason: "Category activity is kept for less time: 6 months, then monthly aggregates instead of 13 months, then monthly aggregates.",
		},
		{
			name: "longer retention is significant", base: "mixi.yaml",
			edits:       []repl{{"  activity: 13 months", "  activity: 2 years"}},
			significant: true,
			reason:      "Category activity is kept longer: 2 years, then monthly aggregates instead of 13 months, then monthly aggregates.",
		},
		{
			name: "keeping no aggregates past the period is minor", base: "mixi.yaml",
			edits:  []repl{{"  activity: 13 months, then monthly aggregates", "  activity: 13 months"}},
			reason: "Past its retention, category activity is deleted and no aggregates of it are kept: 13 months instead of 13 months, then monthly aggregates.",
		},
		{
			name: "keeping aggregates past the period is significant", base: "mixi.yaml",
			edits:       []repl{{"  location: 13 months", "  location: 13 months, then monthly aggregates"}},
			significant: true,
			reason:      "Past its retention, category location is no longer only deleted: 13 months, then monthly aggregates.",
		},
		{
			name: "account lifetime to archive is longer", base: "mixi.yaml",
			edits:       []repl{{"  content: account-lifetime", "  content: archive"}, {"exemptions: [legal-obligation, legal-hold]", "exemptions: [archive, legal-obligation, legal-hold]"}},
			significant: true, reduces: true,
			reason: "Category content is kept longer: archive instead of account-lifetime.",
		},
		{
			name: "right removed", base: "mixi.yaml",
			edits:       []repl{{"  portability: {}\n", ""}},
			significant: true, reduces: true,
			reason: "The right of portability is no longer offered.",
		},
		{
			name: "kept for a legal obligation", base: "jmir.yaml",
			edits: []repl{{"    payment: true\n", "    payment: true\n    legal_obligation: Tax law obliges us to keep them for ten years.\n"},
				{"  payment: account-lifetime\n", "  payment: account-lifetime + 10 years\n"}},
			significant: true, reduces: true,
			reason: "Category payment is now kept after you ask us to erase it, for a legal obligation.",
		},
		{
			name: "erasure exemption added", base: "mixi.yaml",
			edits:       []repl{{"exemptions: [legal-obligation, legal-hold]", "exemptions: [legal-obligation, legal-hold, legal-claims]"}},
			significant: true, reduces: true,
			reason: "Erasure has a new exemption: data kept for legal-claims survives an erasure request.",
		},
		{
			name: "purpose added", base: "mixi.yaml",
			edits: []repl{{"  consent-proof:\n", `  research:
    description: Studying how people use the site.
    basis: legitimate-interest
    interest: learning
    uses: [activity]
  consent-proof:
`}},
			significant: true,
			reason:      "A new purpose: research (Studying how people use the site.), based on legitimate-interest.",
		},
		{
			name: "purpose removed is minor", base: "jmir.yaml",
			edits: []repl{{`  scholarly-record:
    # J19: the published record is archived in the public interest.
    description: Keeping the articles and works you publish as part of the permanent scholarly record (GDPR Art. 89).
    basis: legitimate-interest
    interest: preserving the scholarly record, which readers and science rely on
    uses: [publications]
`, ""}},
			reason: "Purpose scholarly-record was removed.",
		},
		{
			name: "purpose uses more", base: "mixi.yaml",
			edits:       []repl{{"    interest: understanding, in aggregate, how our services are used\n    uses: [activity, location]", "    interest: understanding, in aggregate, how our services are used\n    uses: [activity, location, identity]"}},
			significant: true,
			reason:      "Purpose measure now also uses identity.",
		},
		{
			name: "basis weaker", base: "mixi.yaml",
			edits:       []repl{{"    basis: contract\n    uses: [identity, communications, support]", "    basis: legitimate-interest\n    interest: staying in touch\n    uses: [identity, communications, support]"}},
			significant: true,
			reason:      "Purpose communicate moved to a weaker basis: from contract to legitimate-interest.",
		},
		{
			name: "consent dropped reduces rights", base: "jmir.yaml",
			edits: []repl{{`    basis: consent
    direct_marketing: true
    third_party_marketing: true
    notice: Show and send me offers for products and services of other companies, chosen by JMIR Publications. My data is not given to those companies. I can withdraw at any time.`, `    basis: legitimate-interest
    interest: selling ads
    direct_marketing: true
    third_party_marketing: false`}, {"  marketing_only_with_consent: true\n", ""}},
			significant: true, reduces: true,
			reason: "Purpose third-party-marketing no longer asks for your consent: its basis changed from consent to legitimate-interest.",
		},
		{
			name: "recipient added", base: "mixi.yaml",
			edits: []repl{{"transfers: []", `  - id: cdn
    name: Content delivery network
    role: processor
    country: DE
    purposes: [provide-service]
    categories: [content]
    safeguard: none
transfers: []`}},
			significant: true,
			reason:      "A new recipient: Content delivery network (processor, DE).",
		},
		{
			name: "transfer added", base: "jmir.yaml",
			edits:       []repl{{"  - to: IN\n", "  - to: JP\n    processes: true\n    safeguard: adequacy\n  - to: IN\n"}},
			significant: true,
			reason:      "Data is now transferred to Japan.",
		},
		{
			name: "cookie added", base: "mixi.yaml",
			edits: []repl{{"promises:\n", `  - name: steward_lang
    purpose: provide-service
    lifetime: 1 year
    kind: functional
    first_party: true
    set_by: steward
promises:
`}},
			significant: true,
			reason:      "A new functional cookie: steward_lang (1 year).",
		},
		{
			name: "minimum age lowered", base: "jmir.yaml",
			edits:       []repl{{"minimum_age: 18", "minimum_age: 16"}},
			significant: true,
			reason:      "The minimum age was lowered from 18 to 16.",
		},
		{
			name: "minimum age raised is minor", base: "mixi.yaml",
			edits:  []repl{{"minimum_age: 16", "minimum_age: 18"}},
			reason: "The minimum age was raised from 16 to 18.",
		},
		{
			name: "promise withdrawn", base: "mixi.yaml",
			edits:       []repl{{"  activity_not_linked: true\n", ""}},
			significant: true, reduces: true,
			reason: "We withdraw the promise not to link your activity to your account.",
		},
		{
			name: "no more consent for reductions", base: "mixi.yaml",
			edits:       []repl{{"significant_requires_consent: true", "significant_requires_consent: false"}},
			significant: true, reduces: true,
			reason: "Changes that reduce your rights will no longer wait for your acceptance.",
		},
		{
			name: "activity no longer linked is minor", base: "jmir.yaml",
			edits:       []repl{{"link_to_account: true", "link_to_account: false"}},
			reason:      "Your activity in category activity is no longer linked to your account.",
			significant: false,
		},
		{
			name: "k-anonymity lowered", base: "jmir.yaml",
			edits:       []repl{{"k_anonymity: 10", "k_anonymity: 5"}},
			significant: true,
			reason:      "Shared reports now show groups as small as 5 people (was 10).",
		},
		{
			name: "a new service to sign in with is significant", base: "jmir.yaml",
			edits: []repl{{"    claims: [picture, name, email]\n", "    claims: [picture, name, email]\n  - id: google\n    name: Google\n" +
				"    issuer: https://accounts.google.com\n    client_id: g-1\n    secret_env: STEWARD_OIDC_GOOGLE_SECRET\n    claims: [email]\n"}},
			significant: true,
			reason:      "You may now sign in with Google, which then gives us your email address.",
		},
		{
			name: "a sign-in importing less is minor", base: "jmir.yaml",
			edits:       []repl{{"claims: [picture, name, email]", "claims: [name, email]"}},
			significant: false,
			reason:      "A sign-in with ORCID no longer gives us your profile picture.",
		},
		{
			name: "new field collected", base: "mixi.yaml",
			edits:       []repl{{"fields: [name, email, password, phone, picture, session]", "fields: [name, email, password, phone, picture, session, company]"}},
			significant: true,
			reason:      "Category identity now includes your company name.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := exampleText(t, tt.base)
			changed := text
			for _, e := range tt.edits {
				changed = edit(t, changed, e.old, e.new)
			}
			old, new := mustParse(t, "old", text), mustParse(t, "new", changed)
			c := Diff(old, new)
			if c.Significant != tt.significant || c.ReducesRights != tt.reduces {
				t.Errorf("Diff = significant %v, reduces %v; want %v, %v\n%s", c.Significant, c.ReducesRights, tt.significant, tt.reduces, c)
			}
			if len(tt.edits) == 0 && len(c.Items) != 0 {
				t.Errorf("identical policies differ: %s", c)
			}
			if tt.reason != "" && !contains(c.Reasons, tt.reason) {
				t.Errorf("reasons %q lack %q", c.Reasons, tt.reason)
			}
			for _, r := range c.Reasons {
				if !strings.HasSuffix(r, ".") || strings.ToUpper(r[:1]) != r[:1] {
					t.Errorf("reason %q is not a sentence", r)
				}
			}
			if c.Significant {
				for _, it := range c.Items {
					if !it.Significant && contains(c.Reasons, it.Text) {
						t.Errorf("minor item %q listed among the reasons of a significant change", it.Text)
					}
				}
			}
		})
	}
}

func TestDiffIsDirectional(t *testing.T) {
	text := exampleText(t, "jmir.yaml")
	less := mustParse(t, "less", edit(t, text, "  restriction: {}\n", ""))
	full := mustParse(t, "full", text)
	if c := Diff(full, less); !c.ReducesRights {
		t.Errorf("removing restriction: %s", c)
	}
	c := Diff(less, full)
	if c.Significant || c.ReducesRights || !contains(c.Reasons, "The right of restriction is now offered.") {
		t.Errorf("adding restriction: %s", c)
	}
}

func TestChangeString(t *testing.T) {
	text := exampleText(t, "mixi.yaml")
	c := Diff(mustParse(t, "a", text), mustParse(t, "b", edit(t, text, "  portability: {}\n", "")))
	s := c.String()
	for _, want := range []string{"significant change that reduces rights", "[reduces rights] The right of portability is no longer offered."} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, want it to contain %q", s, want)
		}
	}
	if got := Diff(mustParse(t, "a", text), mustParse(t, "b", text)).String(); got != "no change in meaning\n" {
		t.Errorf("String() of no change = %q", got)
	}
	if got := c.Classification(); got != "significant" {
		t.Errorf("Classification() = %q", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
