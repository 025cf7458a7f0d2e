package rights

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"time"

	"steward/internal/policy"
	"steward/internal/store"
)

// Recipients is the register of disclosures as the rights engine reads
// it (package disclosure, through the app): what actually went to whom,
// for the access report, and the telling of recipients when a change
// completes (GDPR Art. 19).
type Recipients interface {
	// Received lists the disclosures of the subjects' data, newest first.
	Received(ctx context.Context, q store.Q, subjectIDs []string) ([]Received, error)
	// Propagate tells, inside tx, every recipient that received the
	// subjects' affected categories (nil: all) of a completed change
	// ("erasure", "rectification", "restriction", "restriction-lifted"),
	// and returns who was told or is to be told by hand.
	Propagate(ctx context.Context, tx *sql.Tx, request, change string, subjectIDs, categories []string) ([]Told, error)
}

// Received is one disclosure of the subject's data.
type Received struct {
	Recipient  string    `json:"recipient"`
	Purpose    string    `json:"purpose"`
	Categories []string  `json:"categories"`
	Fields     []string  `json:"fields"`
	Basis      string    `json:"basis"`
	At         time.Time `json:"disclosed_at"`
}

// Told is a recipient told of a completed change: its event id and
// status (pending until it acknowledges; manual when staff tell it by
// hand).
type Told struct {
	Recipient  string   `json:"recipient"`
	Name       string   `json:"name"`
	Categories []string `json:"categories"`
	Event      string   `json:"event"`
	Status     string   `json:"status"`
}

// SetRecipients connects the register of disclosures. Without one, the
// access report lists the recipients the policy declares and nobody is
// told of a change. Call it at start-up, before the first request.
func (s *Service) SetRecipients(r Recipients) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recipients = r
}

func (s *Service) register() Recipients {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recipients
}

// CoverDisclosure is one disclosure of the subject's data, as the access
// report shows it (J12, J21).
type CoverDisclosure struct {
	Recipient     string    `json:"recipient"`
	RecipientName string    `json:"recipient_name"`
	Purpose       string    `json:"purpose"`
	Categories    []string  `json:"categories"`
	Fields        []string  `json:"fields"`
	Basis         string    `json:"basis"`
	At            time.Time `json:"disclosed_at"`
}

// actualRecipients fills the cover sheet's recipients from the register:
// each recipient that received the subject's data (basis "disclosed"),
// every disclosure with its date and purpose, and the processors the
// policy declares for the purposes that use the data (they host or
// process it for us without a disclosure of their own: basis
// "declared").
func (s *Service) actualRecipients(ctx context.Context, c *CoverSheet, ids []string) error {
	reg := s.register()
	if reg == nil {
		return nil
	}
	got, err := reg.Received(ctx, s.db, ids)
	if err != nil {
		return err
	}
	declared := c.Recipients
	c.Recipients, c.Disclosures = []CoverRecipient{}, []CoverDisclosure{}
	byID := map[string]int{}
	for _, d := range got {
		r := s.pol.Recipient(d.Recipient)
		name, role, country, safeguard := d.Recipient, "", "", ""
		if r != nil {
			name, role, country, safeguard = r.Name, string(r.Role), r.Country, string(r.Safeguard)
		}
		c.Disclosures = append(c.Disclosures, CoverDisclosure{Recipient: d.Recipient, RecipientName: name, Purpose: d.Purpose,
			Categories: d.Categories, Fields: d.Fields, Basis: d.Basis, At: d.At})
		i, ok := byID[d.Recipient]
		if !ok {
			i = len(c.Recipients)
			byID[d.Recipient] = i
			c.Recipients = append(c.Recipients, CoverRecipient{ID: d.Recipient, Name: name, Role: role, Country: country,
				CountryName: countryName(country), Safeguard: safeguard, Purposes: []string{}, Categories: []string{}, Basis: "disclosed"})
		}
		cr := &c.Recipients[i]
		if !slices.Contains(cr.Purposes, d.Purpose) {
			cr.Purposes = append(cr.Purposes, d.Purpose)
		}
		for _, cat := range d.Categories {
			if !slices.Contains(cr.Categories, cat) {
				cr.Categories = append(cr.Categories, cat)
			}
		}
		if cr.Last.IsZero() || d.At.After(cr.Last) {
			cr.Last = d.At
		}
	}
	for _, r := range declared {
		if _, ok := byID[r.ID]; !ok && r.Role == string(policy.RoleProcessor) {
			c.Recipients = append(c.Recipients, r)
		}
	}
	c.RecipientsNote = "Recipients labelled \"disclosed\" received your data: each disclosure is listed with its date, purpose and basis. " +
		"Processors labelled \"declared\" host or process your data for us under our instructions, for the purposes listed. " +
		"No one else received it."
	return nil
}

// propagate tells the recipients of a completed erasure, rectification or
// restriction (Art. 19) and adds who was told to the request's result.
func (s *Service) propagate(ctx context.Context, tx *sql.Tx, r *Request, result any) (any, error) {
	reg := s.register()
	if reg == nil {
		return result, nil
	}
	var change string
	var cats []string
	switch r.Type {
	case Erasure:
		change = "erasure"
		cats = s.erasedCategories(s.scopeOf(*r))
	case Rectification:
		change = "rectification"
		for f := range r.Corrections {
			cats = appendCategory(cats, s.pol.CategoryOfField(f))
		}
		for _, f := range r.Params.Fields {
			cats = appendCategory(cats, s.pol.CategoryOfField(f))
		}
		if cats == nil {
			cats = []string{}
		}
	case Restriction:
		change = "restriction"
		if r.Params.Lift {
			change = "restriction-lifted"
		}
		if len(r.Params.Categories) > 0 {
			cats = r.Params.Categories
		}
	default:
		return result, nil
	}
	ids, err := s.subjectIDs(ctx, tx, r.SubjectID)
	if err != nil || len(ids) == 0 {
		ids = []string{r.SubjectID}
	}
	told, err := reg.Propagate(ctx, tx, r.ID, change, ids, cats)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || m == nil {
		m = map[string]any{"result": json.RawMessage(b)}
	}
	if told == nil {
		told = []Told{}
	}
	m["recipients_told"] = told
	return m, nil
}

func appendCategory(cats []string, c string) []string {
	if c == "" || slices.Contains(cats, c) {
		return cats
	}
	return append(cats, c)
}

// erasedCategories are the categories an erasure scope affects; nil for
// the whole account.
func (s *Service) erasedCategories(sc Scope) []string {
	var cats []string
	switch sc.Kind {
	case policy.ScopeAccount:
		return nil
	case policy.ScopeCategory:
		for _, c := range sc.Categories {
			cats = appendCategory(cats, c)
		}
		for _, f := range sc.Fields {
			cats = appendCategory(cats, s.pol.CategoryOfField(f))
		}
	default: // content and items: what members post
		for _, f := range contentFields {
			cats = appendCategory(cats, s.pol.CategoryOfField(f))
		}
	}
	if cats == nil {
		cats = []string{}
	}
	return cats
}

// disclosedTo lists the recipients the register shows received any of the
// erased categories, with those categories.
func (s *Service) disclosedTo(received []Received, erased map[string]bool) []RecipientRef {
	out := []RecipientRef{}
	at := map[string]int{}
	for _, d := range received {
		for _, c := range d.Categories {
			if !erased[c] {
				continue
			}
			i, ok := at[d.Recipient]
			if !ok {
				ref := RecipientRef{ID: d.Recipient, Name: d.Recipient, Categories: []string{}, Basis: "disclosed"}
				if r := s.pol.Recipient(d.Recipient); r != nil {
					ref.Name, ref.Role, ref.Country = r.Name, string(r.Role), r.Country
				}
				i = len(out)
				at[d.Recipient] = i
				out = append(out, ref)
			}
			if !slices.Contains(out[i].Categories, c) {
				out[i].Categories = append(out[i].Categories, c)
			}
		}
	}
	return out
}
