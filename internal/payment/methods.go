package payment

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// Address is a billing address as the processor reports it.
type Address struct {
	Line1      string `json:"line1,omitempty"`
	Line2      string `json:"line2,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	Country    string `json:"country,omitempty"`
}

func (a Address) parts() []string {
	return []string{a.Line1, a.Line2, a.PostalCode, a.City, a.State, a.Country}
}

// IsZero reports whether the address says nothing.
func (a Address) IsZero() bool { return a == Address{} }

// LogValue keeps the address out of logs.
func (a Address) LogValue() slog.Value { return slog.StringValue("address") }

// Method is one of a subject's payment methods as the package keeps it:
// each value is "" (nil for the address) when the policy does not
// declare its field.
type Method struct {
	ID string `json:"id"`
	// Token is the processor's id of the payment method (pm_…), which
	// lets the operator charge it through the processor; never a card
	// number.
	Token          string    `json:"card_token,omitempty"`
	Brand          string    `json:"card_brand,omitempty"`
	Last4          string    `json:"card_last4,omitempty"`
	BillingAddress *Address  `json:"billing_address,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// LogValue keeps a method's values out of logs.
func (m Method) LogValue() slog.Value { return slog.GroupValue(slog.String("id", m.ID)) }

// card is what the package keeps of a payment method, already reduced to
// the fields the policy declares. It is also what a quarantined event
// holds.
type card struct {
	Token   string   `json:"card_token,omitempty"`
	Brand   string   `json:"card_brand,omitempty"`
	Last4   string   `json:"card_last4,omitempty"`
	Address *Address `json:"billing_address,omitempty"`
}

var (
	brandRE = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`)
	last4RE = regexp.MustCompile(`^[0-9]{4}$`)
)

// maxAddressPart is the longest part of an address kept, in bytes.
const maxAddressPart = 200

// keptCard reduces a payment method to what the policy declares, and
// checks each value kept. A billing address that holds what looks like a
// card number is dropped (and named in dropped); an id that does was
// refused with the whole event by decodeObject.
func (s *Service) keptCard(m methodObject) (c card, dropped string, err error) {
	if s.cats[FieldToken] != "" {
		c.Token = m.ID
	}
	if m.Card != nil {
		if s.cats[FieldBrand] != "" && m.Card.Brand != "" {
			if !brandRE.MatchString(m.Card.Brand) {
				return card{}, "", fault.FieldError("data.object.card.brand", "the card brand is not a brand name")
			}
			c.Brand = m.Card.Brand
		}
		if s.cats[FieldLast4] != "" && m.Card.Last4 != "" {
			if !last4RE.MatchString(m.Card.Last4) {
				return card{}, "", fault.FieldError("data.object.card.last4", "the card's last digits are not four digits")
			}
			c.Last4 = m.Card.Last4
		}
	}
	if a := m.BillingDetails.Address; s.cats[FieldAddress] != "" && a != nil && !a.IsZero() {
		for _, p := range a.parts() {
			if !validText(p, maxAddressPart) {
				return card{}, "", fault.FieldError("data.object.billing_details.address", "a part of the billing address is too long or holds control characters")
			}
			if looksLikePAN(p) {
				return c, FieldAddress, nil
			}
		}
		addr := *a
		c.Address = &addr
	}
	return c, "", nil
}

// again reduces a held card to what the policy in force declares: it may
// have changed since the event was held.
func (s *Service) again(c card) card {
	if s.cats[FieldToken] == "" {
		c.Token = ""
	}
	if s.cats[FieldBrand] == "" {
		c.Brand = ""
	}
	if s.cats[FieldLast4] == "" {
		c.Last4 = ""
	}
	if s.cats[FieldAddress] == "" {
		c.Address = nil
	}
	return c
}

// looksLikePAN reports whether s holds a run of 13 or more digits, with
// single spaces or dashes between them allowed: card numbers are 13 to 19
// digits long, and nothing the package keeps has such a run otherwise.
func looksLikePAN(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			run++
			if run >= 13 {
				return true
			}
		case (c == ' ' || c == '-') && run > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
		default:
			run = 0
		}
	}
	return false
}

// methodEvent keeps a payment method attached or updated for a linked
// customer, or holds it when the customer matches no subject.
func (s *Service) methodEvent(ctx context.Context, tx *sql.Tx, ev event, m methodObject, out *Outcome) (string, error) {
	if !s.collectsMethods() {
		out.Reason = reasonNothingDecl
		return "", nil
	}
	c, dropped, err := s.keptCard(m)
	if err != nil {
		return "", err
	}
	if dropped != "" {
		out.Reason = "the billing address was not kept: it looks like it holds a card number"
	}
	methodIndex := s.index(indexMethod, m.ID)
	customer := string(m.Customer)
	var subjectID string
	if customer == "" {
		// A method no longer attached to a customer: only a row already
		// kept changes.
		err := tx.QueryRowContext(ctx, `SELECT subject_id FROM payment_methods WHERE method_index = $1`, methodIndex).Scan(&subjectID)
		if errors.Is(err, sql.ErrNoRows) {
			out.Reason = reasonNoCustomer
			return "", nil
		}
		if err != nil {
			return "", err
		}
	} else {
		if !validID(customer) {
			return "", fault.FieldError("data.object.customer", "the customer id is not valid")
		}
		customerIndex := s.index(indexCustomer, customer)
		if err := s.lockCustomer(ctx, tx, customerIndex); err != nil {
			return "", err
		}
		if subjectID, err = s.linkedTo(ctx, tx, customerIndex); err != nil {
			return "", err
		}
		if subjectID == "" {
			held, _ := json.Marshal(heldEvent{Type: ev.Type, Card: &c})
			if err := s.hold(ctx, tx, ev, customerIndex, methodIndex, held); err != nil {
				return "", err
			}
			out.Action, out.Reason = ActionQuarantined, reasonUnknown
			return "", nil
		}
	}
	id, action, reason, err := s.storeMethod(ctx, tx, subjectID, methodIndex, c, ev.Type == typeMethodAttached)
	if err != nil {
		return "", err
	}
	out.Action = action
	if reason != "" {
		out.Reason = reason
	}
	return id, nil
}

// storeMethod seals a card's values for the subject, for the purpose
// payment, and keeps them in the row of the method (made or replaced).
// When the subject's payment data was erased, an attachment (a new card
// at a new purchase) is collected again under a new key; an update of an
// old one is not. A subject the policy does not allow it for now (a
// restriction) gets nothing kept. It returns the subject's id (the
// survivor's, for a merged one) and what it did.
func (s *Service) storeMethod(ctx context.Context, tx *sql.Tx, subjectID string, methodIndex []byte, c card, revive bool) (string, Action, string, error) {
	c = s.again(c)
	for attempt := 0; ; attempt++ {
		v, err := s.d.Door.Subject(ctx, tx, door.System(policy.PaymentPurpose), subjectID)
		if err != nil {
			return "", "", "", err
		}
		sealed, err := s.sealCard(ctx, v, c)
		switch {
		case err == nil:
		case errors.Is(err, door.ErrShredded) && revive && attempt == 0:
			if err := s.revive(ctx, tx, v.ID(), methodFields...); err != nil {
				return "", "", "", err
			}
			continue
		case errors.Is(err, door.ErrShredded):
			return v.ID(), ActionDropped, reasonErased, nil
		case isDenied(err):
			return v.ID(), ActionDropped, reasonNotAllowed, nil
		default:
			return "", "", "", err
		}
		now := s.now()
		_, err = tx.ExecContext(ctx, `INSERT INTO payment_methods (id, subject_id, method_index, card_token_sealed, card_brand_sealed,
card_last4_sealed, billing_address_sealed, policy_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
ON CONFLICT (method_index) DO UPDATE SET subject_id = excluded.subject_id, card_token_sealed = excluded.card_token_sealed,
card_brand_sealed = excluded.card_brand_sealed, card_last4_sealed = excluded.card_last4_sealed,
billing_address_sealed = excluded.billing_address_sealed, policy_version = excluded.policy_version, updated_at = excluded.updated_at`,
			store.NewID("pm_"), v.ID(), methodIndex, sealed[0], sealed[1], sealed[2], sealed[3], s.d.Policy.Number(), now)
		if err != nil {
			return "", "", "", fmt.Errorf("payment: keep a payment method: %w", err)
		}
		return v.ID(), ActionStored, "", nil
	}
}

// sealCard seals each value of c under the subject's key for its field's
// category, in column order; a value not kept is nil (NULL).
func (s *Service) sealCard(ctx context.Context, v *door.View, c card) ([4][]byte, error) {
	var out [4][]byte
	var addr string
	if c.Address != nil {
		b, _ := json.Marshal(c.Address)
		addr = string(b)
	}
	for i, val := range [4]string{c.Token, c.Brand, c.Last4, addr} {
		if val == "" {
			continue
		}
		b, err := v.SealCategory(ctx, s.cats[methodFields[i]], []byte(val))
		if err != nil {
			return out, err
		}
		out[i] = b
	}
	return out, nil
}

// revive lets the categories of fields be collected again for a subject
// whose keys of them were destroyed.
func (s *Service) revive(ctx context.Context, tx *sql.Tx, subjectID string, fields ...string) error {
	done := map[string]bool{}
	for _, f := range fields {
		cat := s.cats[f]
		if cat == "" || done[cat] {
			continue
		}
		done[cat] = true
		gone, err := s.d.Door.Shredded(ctx, tx, subjectID, cat)
		if err != nil {
			return err
		}
		if gone {
			if err := s.d.Door.Revive(ctx, tx, subjectID, cat); err != nil {
				return err
			}
		}
	}
	return nil
}

func isDenied(err error) bool {
	_, ok := door.IsDenied(err)
	return ok || fault.Is(err, fault.PurposeDenied)
}

// detach deletes the row of a payment method the customer removed, and
// any held event of it.
func (s *Service) detach(ctx context.Context, tx *sql.Tx, methodID string, out *Outcome) (string, error) {
	methodIndex := s.index(indexMethod, methodID)
	var subjectID string
	err := tx.QueryRowContext(ctx, `DELETE FROM payment_methods WHERE method_index = $1 RETURNING subject_id`, methodIndex).Scan(&subjectID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("payment: delete a payment method: %w", err)
	}
	n, err := s.dropHeld(ctx, tx, `object_index = $1`, methodIndex)
	if err != nil {
		return "", err
	}
	if subjectID == "" && n == 0 {
		out.Reason = reasonNoRow
		return "", nil
	}
	out.Action = ActionDeleted
	return subjectID, nil
}

// methodCategories are the categories of the method fields the policy
// declares, each once.
func (s *Service) methodCategories() []string {
	var out []string
	for _, f := range methodFields {
		if c := s.cats[f]; c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// Methods returns the subject's payment methods, opened through the door
// for u: the purpose payment and the subject's own request may read them;
// the guard refuses any other purpose (and a staff role that lacks
// payment), and the door audits the refusal. A staff member's read is
// audited too.
func (s *Service) Methods(ctx context.Context, u door.Use, subjectID string) ([]Method, error) {
	v, err := s.d.Door.Subject(ctx, s.d.DB, u, subjectID)
	if err != nil {
		return nil, err
	}
	cats := s.methodCategories()
	for _, cat := range cats {
		if err := v.AllowedCategory(ctx, cat); err != nil {
			return nil, err
		}
	}
	if len(cats) == 0 {
		return []Method{}, nil
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT id, card_token_sealed, card_brand_sealed, card_last4_sealed, billing_address_sealed,
created_at, updated_at FROM payment_methods WHERE subject_id = $1 ORDER BY created_at, id`, v.ID())
	if err != nil {
		return nil, fmt.Errorf("payment: methods: %w", err)
	}
	type row struct {
		m      Method
		sealed [4][]byte
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.m.ID, &r.sealed[0], &r.sealed[1], &r.sealed[2], &r.sealed[3], &r.m.CreatedAt, &r.m.UpdatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("payment: methods: %w", err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("payment: methods: %w", err)
	}
	out := make([]Method, 0, len(rs))
	for _, r := range rs {
		var vals [4]string
		for i, b := range r.sealed {
			if b == nil || s.cats[methodFields[i]] == "" {
				continue
			}
			plain, err := v.OpenCategory(ctx, s.cats[methodFields[i]], b)
			if errors.Is(err, door.ErrShredded) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("payment: methods: %w", err)
			}
			vals[i] = string(plain)
		}
		m := r.m
		m.Token, m.Brand, m.Last4 = vals[0], vals[1], vals[2]
		if vals[3] != "" {
			var a Address
			if err := json.Unmarshal([]byte(vals[3]), &a); err == nil {
				m.BillingAddress = &a
			}
		}
		out = append(out, m)
	}
	if staff, ok := strings.CutPrefix(u.Actor, "staff:"); ok && staff != "" {
		if err := s.d.Audit.Record(ctx, s.d.DB, audit.Event{Actor: u.Actor, Action: "staff.read", Subject: v.ID(),
			Detail: map[string]string{"dataset": "payment_methods", "purpose": u.Purpose, "role": u.Role}}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
