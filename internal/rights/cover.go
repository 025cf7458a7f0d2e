package rights

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"steward/internal/fault"
	"steward/internal/policy"
)

// CoverSheet is the GDPR Art. 15 information that goes with the data: what
// is processed, why, on which basis, who may have received it, where it
// goes abroad, how long it is kept, where it came from, the other rights
// and how to complain. It is generated from the policy in force and the
// subject's own records.
type CoverSheet struct {
	Controller         policy.Controller `json:"controller"`
	PolicyVersion      int               `json:"policy_version"`
	Processing         bool              `json:"processing"`
	Statement          string            `json:"statement"`
	Purposes           []CoverPurpose    `json:"purposes"`
	Categories         []CoverCategory   `json:"categories"`
	Recipients         []CoverRecipient  `json:"recipients"`
	RecipientsNote     string            `json:"recipients_note"`
	Disclosures        []CoverDisclosure `json:"disclosures"`
	Transfers          []CoverTransfer   `json:"transfers"`
	Stores             []policy.Store    `json:"stores"`
	Sources            []CoverSource     `json:"sources"`
	Rights             []CoverRight      `json:"rights"`
	Complaint          policy.Authority  `json:"complaint"`
	AutomatedDecisions string            `json:"automated_decision_making"`
	ErasureExemptions  []string          `json:"erasure_exemptions"`
}

// CoverPurpose is a purpose that may use data the subject has.
type CoverPurpose struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	Basis       string   `json:"basis"`
	Interest    string   `json:"legitimate_interest,omitempty"`
	Categories  []string `json:"categories"`
	// Consented is set for consent-based purposes: whether consent is
	// currently given.
	Consented *bool `json:"consented,omitempty"`
	Objected  bool  `json:"objected,omitempty"`
}

// CoverCategory is a category of data the subject has.
type CoverCategory struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	Retention   string   `json:"retention"`
	Datasets    []string `json:"datasets"`
	Records     int      `json:"records"`
	Sources     []string `json:"sources"`
}

// CoverRecipient is a recipient that may have received the subject's data.
type CoverRecipient struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Role        string   `json:"role"`
	Country     string   `json:"country"`
	CountryName string   `json:"country_name"`
	Safeguard   string   `json:"safeguard,omitempty"`
	Purposes    []string `json:"purposes"`
	Categories  []string `json:"categories"`
	// Basis is "disclosed" for a recipient the register shows received
	// the data (Last is the latest disclosure), "declared" for one the
	// policy declares for the purposes that used the data.
	Basis string    `json:"basis"`
	Last  time.Time `json:"last_disclosed_at,omitzero"`
}

// CoverTransfer is a country outside the controller's where data is
// stored or processed (J27).
type CoverTransfer struct {
	Country     string `json:"country"`
	CountryName string `json:"country_name"`
	Safeguard   string `json:"safeguard"`
	Stores      bool   `json:"stores"`
	Processes   bool   `json:"processes"`
	Note        string `json:"note,omitempty"`
}

// CoverSource is where some of the data came from (J6).
type CoverSource struct {
	Source  string `json:"source"`
	Label   string `json:"label"`
	Records int    `json:"records"`
}

// CoverRight is one right and how to use it.
type CoverRight struct {
	Right   string `json:"right"`
	Offered bool   `json:"offered"`
	Note    string `json:"note,omitempty"`
}

func countryName(code string) string {
	if code == "ZZ" {
		return "not known in advance"
	}
	if n, ok := policy.CountryName(code); ok {
		return n
	}
	return code
}

// cover builds the cover sheet from the inventory.
func (s *Service) cover(ctx context.Context, inv *inventory) (*CoverSheet, error) {
	st, err := s.subjects.State(ctx, s.db, inv.subjectID)
	if err != nil && fault.CodeOf(err) != fault.NotFound {
		return nil, err
	}
	c := &CoverSheet{
		Controller: s.pol.Controller, PolicyVersion: s.polVer,
		Stores: s.pol.Stores, Complaint: s.pol.Controller.Authority,
		RecipientsNote: "No register of actual disclosures exists yet: these are the recipients the privacy policy declares for the purposes " +
			"that use your data, each labelled \"declared\". They may have received it; a recipient not listed here has not.",
		AutomatedDecisions: "none: no decision about you is made by automated means alone, profiling included (GDPR Art. 22)",
		Purposes:           []CoverPurpose{}, Categories: []CoverCategory{}, Recipients: []CoverRecipient{}, Disclosures: []CoverDisclosure{},
		Transfers: []CoverTransfer{}, Sources: []CoverSource{}, Rights: []CoverRight{}, ErasureExemptions: []string{},
	}
	if c.Stores == nil {
		c.Stores = []policy.Store{}
	}
	held := map[string]*CoverCategory{}
	for _, d := range inv.held() {
		for _, cat := range d.Categories {
			cc := held[cat]
			if cc == nil {
				pc := s.pol.Category(cat)
				cc = &CoverCategory{ID: cat, Datasets: []string{}, Sources: []string{}}
				if pc != nil {
					cc.Description = pc.Description
					cc.Retention = pc.Retention.Describe()
					cc.Sources = append(cc.Sources, pc.Source...)
				}
				held[cat] = cc
			}
			cc.Datasets = append(cc.Datasets, d.Name)
			cc.Records += d.Count
		}
	}
	c.Processing = len(inv.held()) > 0
	if c.Processing {
		c.Statement = fmt.Sprintf("Yes: %s processes personal data about you. This report lists all of it with what it is used for.", s.pol.Controller.Name)
	} else {
		c.Statement = fmt.Sprintf("%s holds no personal data about you.", s.pol.Controller.Name)
	}
	for _, pc := range s.pol.Categories() {
		if cc := held[pc.ID]; cc != nil {
			c.Categories = append(c.Categories, *cc)
		}
	}
	used := map[string]bool{}
	for _, p := range s.pol.Purposes() {
		if p.Builtin {
			continue
		}
		var cats []string
		for _, u := range p.Uses {
			if held[u] != nil {
				cats = append(cats, u)
			}
		}
		if len(cats) == 0 {
			continue
		}
		used[p.ID] = true
		cp := CoverPurpose{ID: p.ID, Description: p.Description, Basis: string(p.Basis), Interest: p.Interest, Categories: cats}
		if st != nil {
			cp.Objected = st.Objections[p.ID] || (p.DirectMarketing && (st.MarketingSuppressed || st.Objections[policy.DirectMarketing]))
			if p.Basis == policy.BasisConsent {
				v := st.Consents[p.ID]
				cp.Consented = &v
			}
		}
		if p.AutomatedDecisions {
			c.AutomatedDecisions = "the purpose " + p.ID + " involves automated decisions; see the privacy notice for the logic and its consequences"
		}
		c.Purposes = append(c.Purposes, cp)
	}
	for _, r := range s.pol.Recipients {
		var purposes, cats []string
		for _, p := range r.Purposes {
			if used[p] || (policy.IsBuiltin(p) && c.Processing) {
				purposes = append(purposes, p)
			}
		}
		for _, cat := range r.Categories {
			if held[cat] != nil {
				cats = append(cats, cat)
			}
		}
		if len(purposes) == 0 || len(cats) == 0 {
			continue
		}
		c.Recipients = append(c.Recipients, CoverRecipient{ID: r.ID, Name: r.Name, Role: string(r.Role), Country: r.Country,
			CountryName: countryName(r.Country), Safeguard: string(r.Safeguard), Purposes: purposes, Categories: cats, Basis: "declared"})
	}
	if err := s.actualRecipients(ctx, c, inv.ids); err != nil {
		return nil, err
	}
	for _, t := range s.pol.Transfers {
		c.Transfers = append(c.Transfers, CoverTransfer{Country: t.To, CountryName: countryName(t.To), Safeguard: string(t.Safeguard),
			Stores: t.Stores, Processes: t.Processes, Note: t.Note})
	}
	sources := map[string]int{}
	for _, d := range inv.held() {
		for k, n := range d.sources {
			sources[k] += n
		}
	}
	keys := make([]string, 0, len(sources))
	for k := range sources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.Sources = append(c.Sources, CoverSource{Source: k, Label: sourceLabel(k), Records: sources[k]})
	}
	rights := s.pol.Rights
	add := func(name string, offered bool, note string) {
		c.Rights = append(c.Rights, CoverRight{Right: name, Offered: offered, Note: note})
	}
	how := rights.HowToExercise
	note := func(r *policy.Right, def string) string {
		if r != nil && r.Note != "" {
			return r.Note
		}
		return def
	}
	add("access", rights.Access != nil, note(rights.Access, "This report. "+how))
	add("rectification", rights.Rectification != nil, note(rights.Rectification, "Correct what is wrong in the privacy centre. "+how))
	erasureNote := how
	if rights.Erasure != nil && rights.Erasure.Note != "" {
		erasureNote = rights.Erasure.Note
	}
	add("erasure", rights.Erasure != nil, erasureNote)
	add("restriction", rights.Restriction != nil, note(rights.Restriction, how))
	add("portability", rights.Portability != nil, note(rights.Portability, "A ZIP of what you gave us, in JSON and CSV. "+how))
	add("objection", rights.Objection != nil, note(rights.Objection, "An objection to direct marketing always stops it. "+how))
	add("withdraw-consent", len(s.pol.ConsentPurposes()) > 0, "Withdrawing consent does not affect what was done before.")
	if rights.Erasure != nil {
		for _, e := range rights.Erasure.Exemptions {
			c.ErasureExemptions = append(c.ErasureExemptions, string(e))
		}
	}
	slices.Sort(c.ErasureExemptions)
	return c, nil
}
