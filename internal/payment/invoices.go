package payment

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// invoice is what the package keeps of an invoice paid, where the policy
// declares the field invoice.
type invoice struct {
	Number string `json:"number"`
	// Amount is in the currency's smallest unit (cents).
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	PaidAt   time.Time `json:"paid_at"`
}

var currencyRE = regexp.MustCompile(`^[a-z]{3}$`)

// keptInvoice checks an invoice's values and reduces it to what is kept.
func keptInvoice(in invoiceObject) (invoice, error) {
	if !validText(in.Number, 64) || looksLikePAN(in.Number) {
		return invoice{}, fault.FieldError("data.object.number", "the invoice number is not valid")
	}
	if !currencyRE.MatchString(in.Currency) {
		return invoice{}, fault.FieldError("data.object.currency", "the currency is not a three-letter code")
	}
	if in.AmountPaid < 0 {
		return invoice{}, fault.FieldError("data.object.amount_paid", "the amount paid is negative")
	}
	at := in.StatusTransitions.PaidAt
	if at <= 0 {
		at = in.Created
	}
	return invoice{Number: in.Number, Amount: in.AmountPaid, Currency: in.Currency, PaidAt: time.Unix(at, 0).UTC()}, nil
}

// invoiceEvent keeps an invoice paid by a linked customer, or holds it
// when the customer matches no subject.
func (s *Service) invoiceEvent(ctx context.Context, tx *sql.Tx, ev event, in invoiceObject, out *Outcome) (string, error) {
	if s.cats[FieldInvoice] == "" {
		out.Reason = reasonInvoiceNotDecl
		return "", nil
	}
	kept, err := keptInvoice(in)
	if err != nil {
		return "", err
	}
	customer := string(in.Customer)
	if customer == "" {
		out.Reason = reasonNoCustomer
		return "", nil
	}
	if !validID(customer) {
		return "", fault.FieldError("data.object.customer", "the customer id is not valid")
	}
	invoiceIndex := s.index(indexInvoice, in.ID)
	customerIndex := s.index(indexCustomer, customer)
	if err := s.lockCustomer(ctx, tx, customerIndex); err != nil {
		return "", err
	}
	subjectID, err := s.linkedTo(ctx, tx, customerIndex)
	if err != nil {
		return "", err
	}
	if subjectID == "" {
		held, _ := json.Marshal(heldEvent{Type: ev.Type, Invoice: &kept})
		if err := s.hold(ctx, tx, ev, customerIndex, invoiceIndex, held); err != nil {
			return "", err
		}
		out.Action, out.Reason = ActionQuarantined, reasonUnknown
		return "", nil
	}
	id, action, reason, err := s.storeInvoice(ctx, tx, subjectID, invoiceIndex, kept)
	out.Action, out.Reason = action, reason
	return id, err
}

// storeInvoice seals an invoice for the subject, for the purpose payment,
// and keeps it once (a second payment event of it changes nothing). An
// invoice is a new record even after the subject's payment data was
// erased: its category's key is made again.
func (s *Service) storeInvoice(ctx context.Context, tx *sql.Tx, subjectID string, invoiceIndex []byte, in invoice) (string, Action, string, error) {
	cat := s.cats[FieldInvoice]
	if cat == "" {
		return "", ActionIgnored, reasonInvoiceNotDecl, nil
	}
	plain, _ := json.Marshal(in)
	for attempt := 0; ; attempt++ {
		v, err := s.d.Door.Subject(ctx, tx, door.System(policy.PaymentPurpose), subjectID)
		if err != nil {
			return "", "", "", err
		}
		sealed, err := v.SealCategory(ctx, cat, plain)
		switch {
		case err == nil:
		case errors.Is(err, door.ErrShredded) && attempt == 0:
			if err := s.revive(ctx, tx, v.ID(), FieldInvoice); err != nil {
				return "", "", "", err
			}
			continue
		case isDenied(err):
			return v.ID(), ActionDropped, reasonNotAllowed, nil
		default:
			return "", "", "", err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payment_invoices (id, subject_id, invoice_index, invoice_sealed, policy_version, created_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (invoice_index) DO NOTHING`, store.NewID("iv_"), v.ID(), invoiceIndex, sealed, s.d.Policy.Number(), s.now()); err != nil {
			return "", "", "", fmt.Errorf("payment: keep an invoice: %w", err)
		}
		return v.ID(), ActionStored, "", nil
	}
}
