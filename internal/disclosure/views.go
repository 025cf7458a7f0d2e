package disclosure

import (
	"context"
	"slices"
	"time"

	"steward/internal/fault"
	"steward/internal/policy"
)

// OrderFields returns the fields an order through a partner brand
// discloses to the recipient (the fields it is declared with) and the
// purpose: the one named, or the recipient's only contract purpose.
func (s *Service) OrderFields(recipientID, purpose string) ([]string, string, error) {
	rc := s.recipients[recipientID]
	if rc == nil || rc.Role != policy.RolePartner {
		return nil, "", fault.FieldError("recipient", "the privacy policy declares no partner %q", clip(recipientID, 64))
	}
	if len(rc.Fields) == 0 {
		return nil, "", fault.FieldError("recipient", "the policy does not say which fields partner %s receives with an order", rc.ID)
	}
	if purpose == "" {
		for _, p := range rc.Purposes {
			if pu := s.pol.Purpose(p); pu != nil && pu.Basis == policy.BasisContract {
				if purpose != "" {
					return nil, "", fault.FieldError("purpose", "partner %s serves several purposes: name one of %v", rc.ID, rc.Purposes)
				}
				purpose = p
			}
		}
		if purpose == "" {
			return nil, "", fault.FieldError("purpose", "partner %s serves no purpose based on a contract", rc.ID)
		}
	}
	return slices.Clone(rc.Fields), purpose, nil
}

// Mine is one disclosure of a member's data as they see it.
type Mine struct {
	Recipient     string    `json:"recipient"`
	RecipientName string    `json:"recipient_name"`
	Role          string    `json:"role"`
	Country       string    `json:"country"`
	Purpose       string    `json:"purpose"`
	Categories    []string  `json:"categories"`
	Fields        []string  `json:"fields"`
	Basis         string    `json:"basis"`
	DisclosedAt   time.Time `json:"disclosed_at"`
}

// Mine lists who received the subject's data (and the data of those
// merged into them), newest first: the privacy centre's "who received my
// data". A disclosure on a legal request they have not been told of is
// not listed (Shown).
func (s *Service) Mine(ctx context.Context, subjectID string) ([]Mine, error) {
	ids := []string{subjectID}
	if merged, err := s.d.Subjects.MergedFrom(ctx, s.d.DB, subjectID); err == nil {
		ids = append(ids, merged...)
	}
	ds, err := s.Shown(ctx, s.d.DB, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Mine, 0, len(ds))
	for _, d := range ds {
		m := Mine{Recipient: d.Recipient, RecipientName: d.Recipient, Purpose: d.Purpose, Categories: d.Categories, Fields: d.Fields,
			Basis: d.Basis, DisclosedAt: d.DisclosedAt}
		if rc := s.recipients[d.Recipient]; rc != nil {
			m.RecipientName, m.Role, m.Country = rc.Name, string(rc.Role), rc.Country
		}
		out = append(out, m)
	}
	return out, nil
}

// RecipientInfo is a declared recipient as staff see it: how it is
// reached and its deliveries by status.
type RecipientInfo struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Role       string         `json:"role"`
	Country    string         `json:"country"`
	Purposes   []string       `json:"purposes"`
	Categories []string       `json:"categories"`
	Fields     []string       `json:"fields"`
	Delivery   string         `json:"delivery"` // webhook, pull, by-hand
	Webhook    string         `json:"webhook,omitempty"`
	Counts     map[string]int `json:"deliveries"`
}

// Recipients lists the declared recipients with their deliveries.
func (s *Service) Recipients(ctx context.Context) ([]RecipientInfo, error) {
	rows, err := s.d.DB.QueryContext(ctx, `SELECT recipient_id, status, COUNT(*) FROM disclosure_deliveries GROUP BY recipient_id, status`)
	if err != nil {
		return nil, errorf("recipients: %w", err)
	}
	defer rows.Close()
	counts := map[string]map[string]int{}
	for rows.Next() {
		var id, st string
		var n int
		if err := rows.Scan(&id, &st, &n); err != nil {
			return nil, errorf("recipients: %w", err)
		}
		if counts[id] == nil {
			counts[id] = map[string]int{}
		}
		counts[id][st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("recipients: %w", err)
	}
	out := []RecipientInfo{}
	for _, r := range s.pol.Recipients {
		rc := s.recipients[r.ID]
		ri := RecipientInfo{ID: r.ID, Name: r.Name, Role: string(r.Role), Country: r.Country, Purposes: r.Purposes, Categories: r.Categories,
			Fields: r.Fields, Delivery: "by-hand", Counts: counts[r.ID]}
		if ri.Fields == nil {
			ri.Fields = []string{}
		}
		if ri.Counts == nil {
			ri.Counts = map[string]int{}
		}
		switch {
		case rc.webhook():
			ri.Delivery, ri.Webhook = "webhook", r.Webhook.URL
		case rc.pulls():
			ri.Delivery = "pull"
		}
		out = append(out, ri)
	}
	return out, nil
}
