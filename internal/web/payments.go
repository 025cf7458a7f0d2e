package web

// Payments over the API: the processor's signed webhook, a member's own
// cards, and billing staff's reads. Every route is under paymentPrefix, so
// plain HTTP is refused outside development (J17).

import (
	"io"
	"net/http"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/payment"
)

// handlePaymentWebhook takes one event from the payment processor. The
// body is read raw (the signature covers its exact bytes) and bounded;
// the service verifies it, keeps only what the policy declares and
// answers what it did. A replay answers 200 with duplicate set, so the
// processor stops retrying.
func (s *server) handlePaymentWebhook() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(io.LimitReader(r.Body, payment.MaxPayload+1))
		if err != nil {
			return fault.Wrap(fault.Invalid, err, "the request body could not be read")
		}
		if len(body) > payment.MaxPayload {
			return fault.New(fault.TooLarge, "an event may be at most %d bytes", payment.MaxPayload)
		}
		out, err := s.d.Payment.Webhook(r.Context(), body, r.Header.Get("Stripe-Signature"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, out)
	}
}

// handleMyPaymentMethods lists the member's own cards, read for their own
// request.
func (s *server) handleMyPaymentMethods() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		ms, err := s.d.Payment.Methods(r.Context(), door.Subject(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		if ms == nil {
			ms = []payment.Method{}
		}
		return s.encode(w, http.StatusOK, map[string]any{"methods": ms})
	}
}

// handleMemberPaymentMethods lists a member's cards for billing staff, read
// for the payment purpose (the door refuses a role that does not hold it).
func (s *server) handleMemberPaymentMethods() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		ms, err := s.d.Payment.Methods(r.Context(), door.Staff(a.P.Account.SubjectID, a.P.Account.Role, "payment"), r.PathValue("id"))
		if err != nil {
			return err
		}
		if ms == nil {
			ms = []payment.Method{}
		}
		return s.encode(w, http.StatusOK, map[string]any{"methods": ms})
	}
}
