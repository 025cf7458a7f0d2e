package payment

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/stripe/stripe-go/v82/webhook"

	"steward/internal/audit"
	"steward/internal/fault"
)

// MaxPayload is the largest event body the webhook reads.
const MaxPayload = 1 << 20

// Action says what processing an event did.
type Action string

const (
	ActionStored      Action = "stored"      // a payment method or invoice was kept
	ActionDeleted     Action = "deleted"     // a payment method was deleted
	ActionLinked      Action = "linked"      // a customer was linked to a subject
	ActionQuarantined Action = "quarantined" // held: no subject matches the customer
	ActionIgnored     Action = "ignored"     // acknowledged, nothing stored
	ActionDropped     Action = "dropped"     // the policy does not allow keeping it now
)

// Outcome says what the webhook did with one event.
type Outcome struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Action  Action `json:"action"`
	// Duplicate marks an event already processed: nothing was stored again.
	Duplicate bool `json:"duplicate,omitempty"`
	// Released counts the held events a customer's link released.
	Released int `json:"released,omitempty"`
	// Reason says in words why nothing, or only a quarantine, was stored.
	Reason string `json:"reason,omitempty"`
}

// Reasons given in outcomes, quarantine rows and the audit log.
const (
	reasonOtherType      = "not an event anything is kept of"
	reasonNothingDecl    = "the privacy policy declares no payment field"
	reasonUnknown        = "unknown customer"
	reasonDuplicate      = "already processed"
	reasonLinkedElse     = "the customer is linked to another subject"
	reasonNoRow          = "no such payment method is kept"
	reasonNotAllowed     = "the privacy policy does not allow keeping it for this subject now"
	reasonErased         = "the subject's payment data was erased"
	reasonNoCustomer     = "the event names no customer"
	reasonAlreadyLinked  = "the customer was already linked"
	reasonInvoiceNotDecl = "the privacy policy does not declare invoices"
)

// The event types the webhook acts on.
const (
	typeCustomerCreated  = "customer.created"
	typeCustomerUpdated  = "customer.updated"
	typeMethodAttached   = "payment_method.attached"
	typeMethodUpdated    = "payment_method.updated"
	typeMethodAutoUpdate = "payment_method.automatically_updated"
	typeMethodDetached   = "payment_method.detached"
	typeInvoicePaid      = "invoice.paid"
)

// msgSignature begins the refusal of a delivery whose signature does not
// verify: wrong, missing or malformed, it never says which secret or
// which signature was expected.
const msgSignature = "the webhook signature does not verify"

// Webhook verifies one delivery of the processor's webhook and processes
// its event: the Stripe-Signature header must verify with the endpoint's
// secret, with a timestamp no older than the tolerance. Each refusal is a
// coded error (fault.Unauthorized for the signature, fault.Invalid for a
// body that is not an event, fault.TooLarge) with a message safe to show,
// and is audited without the body. An event processed before stores
// nothing again (Outcome.Duplicate). Processing runs in one transaction:
// an event is kept whole or not at all.
func (s *Service) Webhook(ctx context.Context, payload []byte, signature string) (Outcome, error) {
	if len(payload) > MaxPayload {
		return Outcome{}, s.refuse(ctx, fault.New(fault.TooLarge, "the webhook body is larger than %d bytes", MaxPayload), "too large")
	}
	if err := webhook.ValidatePayloadWithTolerance(payload, signature, s.d.Secret, s.d.Tolerance); err != nil {
		ferr, reason := signatureFault(err, s.d.Tolerance)
		return Outcome{}, s.refuse(ctx, ferr, reason)
	}
	ev, err := decodeEvent(payload)
	if err != nil {
		return Outcome{}, s.refuse(ctx, err, "malformed event", ev.ID)
	}
	var out Outcome
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		out = Outcome{EventID: ev.ID, Type: ev.Type}
		res, err := tx.ExecContext(ctx, `INSERT INTO payment_events (event_id, event_type, received_at) VALUES ($1, $2, $3)
ON CONFLICT (event_id) DO NOTHING`, ev.ID, ev.Type, s.now())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			out.Duplicate, out.Action, out.Reason = true, ActionIgnored, reasonDuplicate
			return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "payment.webhook_duplicate",
				Detail: map[string]string{"event": ev.ID, "type": ev.Type}})
		}
		var subjectID string
		if subjectID, err = s.process(ctx, tx, ev, &out); err != nil {
			return err
		}
		if out.Action == ActionIgnored && out.Reason == reasonOtherType {
			return nil // nothing to tell: the event was only acknowledged
		}
		detail := map[string]string{"event": ev.ID, "type": ev.Type, "action": string(out.Action)}
		if out.Reason != "" {
			detail["reason"] = out.Reason
		}
		if out.Released > 0 {
			detail["released"] = strconv.Itoa(out.Released)
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "payment.event", Subject: subjectID, Detail: detail})
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return Outcome{}, s.refuse(ctx, err, "refused event", ev.ID)
		}
		return Outcome{}, fmt.Errorf("payment: webhook: %w", err)
	}
	return out, nil
}

// process acts on a verified, first-seen event inside tx and returns the
// subject it concerned ("" when none).
func (s *Service) process(ctx context.Context, tx *sql.Tx, ev event, out *Outcome) (string, error) {
	out.Action = ActionIgnored
	switch ev.Type {
	case typeCustomerCreated, typeCustomerUpdated, typeMethodAttached, typeMethodUpdated, typeMethodAutoUpdate, typeMethodDetached, typeInvoicePaid:
	default:
		out.Reason = reasonOtherType
		return "", nil
	}
	if !s.collects() {
		out.Reason = reasonNothingDecl
		return "", nil
	}
	switch ev.Type {
	case typeCustomerCreated, typeCustomerUpdated:
		var c customerObject
		if err := decodeObject(ev, "customer", &c); err != nil {
			return "", err
		}
		return s.customerEvent(ctx, tx, c, out)
	case typeInvoicePaid:
		var in invoiceObject
		if err := decodeObject(ev, "invoice", &in); err != nil {
			return "", err
		}
		return s.invoiceEvent(ctx, tx, ev, in, out)
	}
	var m methodObject
	if err := decodeObject(ev, "payment_method", &m); err != nil {
		return "", err
	}
	if ev.Type == typeMethodDetached {
		return s.detach(ctx, tx, m.ID, out)
	}
	return s.methodEvent(ctx, tx, ev, m, out)
}

// refuse audits a refused delivery (never its body) and returns err.
func (s *Service) refuse(ctx context.Context, err error, reason string, eventID ...string) error {
	detail := map[string]string{"reason": reason, "code": string(fault.CodeOf(err))}
	if len(eventID) > 0 && eventID[0] != "" {
		detail["event"] = eventID[0]
	}
	if aerr := s.d.Audit.Record(ctx, s.d.DB, audit.Event{Actor: "system", Action: "payment.webhook_refused", Detail: detail}); aerr != nil {
		return fmt.Errorf("%w; payment: audit the refusal: %w", err, aerr)
	}
	return err
}

// signatureFault turns the library's verdict into a coded error and the
// reason the audit log keeps.
func signatureFault(err error, tolerance time.Duration) (error, string) {
	switch {
	case errors.Is(err, webhook.ErrTooOld):
		return fault.Wrap(fault.Unauthorized, err, "the webhook signature's timestamp is outside the tolerance of %s: a delayed or replayed delivery",
			tolerance), "timestamp outside tolerance"
	case errors.Is(err, webhook.ErrNotSigned):
		return fault.Wrap(fault.Unauthorized, err, "%s: the Stripe-Signature header is missing", msgSignature), "missing signature"
	case errors.Is(err, webhook.ErrInvalidHeader):
		return fault.Wrap(fault.Unauthorized, err, "%s: the Stripe-Signature header is malformed", msgSignature), "malformed signature header"
	}
	return fault.Wrap(fault.Unauthorized, err, msgSignature), "bad signature"
}

// event is the part of a webhook event the package reads.
type event struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Type   string `json:"type"`
	Data   struct {
		Object   json.RawMessage `json:"object"`
		Previous struct {
			Customer expandable `json:"customer"`
		} `json:"previous_attributes"`
	} `json:"data"`
}

// customerObject is what a customer event says that the package reads:
// the id, the address to match a subject by, and the subject the
// operator's app named in its metadata. Nothing of it is stored but the
// link.
type customerObject struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Email    string `json:"email"`
	Deleted  bool   `json:"deleted"`
	Metadata struct {
		StewardSubject string `json:"steward_subject"`
	} `json:"metadata"`
}

// methodObject is what a payment method event says that the package
// reads. A card's number, expiry, fingerprint, checks and wallet, the
// billing name, email and phone, and the metadata are never decoded.
type methodObject struct {
	ID       string     `json:"id"`
	Object   string     `json:"object"`
	Customer expandable `json:"customer"`
	Card     *struct {
		Brand string `json:"brand"`
		Last4 string `json:"last4"`
	} `json:"card"`
	BillingDetails struct {
		Address *Address `json:"address"`
	} `json:"billing_details"`
}

// invoiceObject is what an invoice event says that the package reads.
type invoiceObject struct {
	ID                string     `json:"id"`
	Object            string     `json:"object"`
	Customer          expandable `json:"customer"`
	Number            string     `json:"number"`
	AmountPaid        int64      `json:"amount_paid"`
	Currency          string     `json:"currency"`
	Created           int64      `json:"created"`
	Status            string     `json:"status"`
	StatusTransitions struct {
		PaidAt int64 `json:"paid_at"`
	} `json:"status_transitions"`
}

// expandable is an id the processor sends either as a string or, when
// expanded, as an object with an id.
type expandable string

func (e *expandable) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*e = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		*e = expandable(s)
		return err
	}
	var o struct {
		ID string `json:"id"`
	}
	err := json.Unmarshal(b, &o)
	*e = expandable(o.ID)
	return err
}

var (
	// idRE is the shape of the processor's ids (evt_…, cus_…, pm_…, in_…).
	idRE   = regexp.MustCompile(`^[A-Za-z0-9_]{1,255}$`)
	typeRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
)

// decodeEvent reads the envelope of an event. Errors never quote the
// body: a decoding error of the standard library may hold a value (a
// number sent where a string belongs), and a value may be a card number.
func decodeEvent(payload []byte) (event, error) {
	var ev event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return event{}, jsonFault("event", err)
	}
	if !validID(ev.ID) {
		return event{}, fault.FieldError("id", "the event has no valid id")
	}
	if len(ev.Type) > 128 || !typeRE.MatchString(ev.Type) || looksLikePAN(ev.Type) {
		return ev, fault.FieldError("type", "the event has no valid type")
	}
	if ev.Object != "" && ev.Object != "event" {
		return ev, fault.FieldError("object", "the body is not an event")
	}
	return ev, nil
}

// decodeObject reads the event's object, which must be of kind.
func decodeObject(ev event, kind string, into any) error {
	if len(ev.Data.Object) == 0 {
		return fault.FieldError("data.object", "the event carries no object")
	}
	if err := json.Unmarshal(ev.Data.Object, into); err != nil {
		return jsonFault("data.object", err)
	}
	var id, object string
	switch o := into.(type) {
	case *customerObject:
		id, object = o.ID, o.Object
	case *methodObject:
		id, object = o.ID, o.Object
	case *invoiceObject:
		id, object = o.ID, o.Object
	}
	if object != kind {
		return fault.FieldError("data.object", "a %s event must carry a %s", ev.Type, kind)
	}
	if !validID(id) {
		return fault.FieldError("data.object.id", "the %s has no valid id", kind)
	}
	return nil
}

// jsonFault describes a decoding error by where it happened, never by
// the value it met.
func jsonFault(where string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fault.FieldError(where, "the webhook body is not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fault.FieldError(typ.Field, "a value of the event has the wrong type (%s expected)", fault.JSONKind(typ.Type))
	}
	return fault.FieldError(where, "the webhook body is not a JSON event")
}

// validText reports whether s may be kept as a short text value.
func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
