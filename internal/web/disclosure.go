package web

// Disclosures over the API: a member's order through a partner brand
// (which discloses the partner's declared fields, J12), what a member's
// data went to, the staff register of disclosures, deliveries and legal
// requests, the recipients' own endpoints (acknowledgements and pulls),
// and the public transparency report.

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"steward/internal/disclosure"
	"steward/internal/fault"
)

// maxAckBody bounds a recipient's acknowledgement.
const maxAckBody = 64 << 10

type orderInput struct {
	Recipient string `json:"recipient"`
	Purpose   string `json:"purpose"`
}

// handlePartnerOrder records a member's order through a partner brand: the
// fields the partner is declared to receive are read from the member's
// profile and disclosed to it, on the contract of the order.
func (s *server) handlePartnerOrder() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in orderInput
		if err := decode(r, &in); err != nil {
			return err
		}
		d, err := s.partnerOrder(r, a, in)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, d)
	}
}

func (s *server) partnerOrder(r *http.Request, a auth, in orderInput) (disclosure.Disclosure, error) {
	fields, purpose, err := s.d.Disclosure.OrderFields(in.Recipient, in.Purpose)
	if err != nil {
		return disclosure.Disclosure{}, err
	}
	pr, err := s.d.Identity.Profile(r.Context(), a.P)
	if err != nil {
		return disclosure.Disclosure{}, err
	}
	values := map[string]string{}
	for _, f := range fields {
		if v := pr.Fields[f]; v != "" {
			values[f] = v
		} else if f == "email" && pr.Email != "" {
			values[f] = pr.Email
		}
	}
	return s.d.Disclosure.Disclose(r.Context(), disclosure.Request{Recipient: in.Recipient, Purpose: purpose,
		Subject: a.P.Account.SubjectID, Values: values, Basis: disclosure.BasisContract, Actor: a.P.Account.SubjectID, Event: "order.placed"})
}

// handleMyDisclosures lists who received the member's data.
func (s *server) handleMyDisclosures() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		ds, err := s.d.Disclosure.Mine(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"disclosures": ds})
	}
}

func timeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		if d, derr := time.Parse("2006-01-02", v); derr == nil {
			return d, nil
		}
		return time.Time{}, badRequest(name, name+" is a date (2006-01-02) or an RFC 3339 time", err)
	}
	return t, nil
}

func limitParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, badRequest("limit", "limit is a number from 1 to 500", err)
	}
	return n, nil
}

func (s *server) disclosureFilter(r *http.Request) (disclosure.Filter, error) {
	q := r.URL.Query()
	f := disclosure.Filter{Recipient: q.Get("recipient"), Purpose: q.Get("purpose"), Basis: q.Get("basis"), Subject: q.Get("subject")}
	var err error
	if f.From, err = timeParam(r, "from"); err != nil {
		return f, err
	}
	if f.To, err = timeParam(r, "to"); err != nil {
		return f, err
	}
	f.Limit, err = limitParam(r)
	return f, err
}

// handleDisclosureLog is the staff register of disclosures, filtered.
func (s *server) handleDisclosureLog() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.disclosureFilter(r)
		if err != nil {
			return err
		}
		ds, err := s.d.Disclosure.Log(r.Context(), f)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"disclosures": ds})
	}
}

// handleRecipients lists the declared recipients, how each is reached and
// its deliveries by status.
func (s *server) handleRecipients() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		rs, err := s.d.Disclosure.Recipients(r.Context())
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"recipients": rs})
	}
}

// handleDeliveries lists deliveries, by recipient and status.
func (s *server) handleDeliveries() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		n, err := limitParam(r)
		if err != nil {
			return err
		}
		st := r.URL.Query().Get("status")
		switch st {
		case "", disclosure.StatusPending, disclosure.StatusDelivered, disclosure.StatusAcknowledged, disclosure.StatusFailed, disclosure.StatusManual:
		default:
			return badRequest("status", "status is pending, delivered, acknowledged, failed or manual", nil)
		}
		ds, err := s.d.Disclosure.Deliveries(r.Context(), r.URL.Query().Get("recipient"), st, n)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"deliveries": ds})
	}
}

func (s *server) handleDelivery() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		d, err := s.d.Disclosure.GetDelivery(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, d)
	}
}

// handleToldByHand records that staff told a recipient by hand.
func (s *server) handleToldByHand() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		d, err := s.d.Disclosure.MarkTold(r.Context(), a.P.Account.SubjectID, r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, d)
	}
}

// handleRequestRecipients shows who was told of a rights request's change
// and who acknowledged (Art. 19).
func (s *server) handleRequestRecipients() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		id := r.PathValue("id")
		if _, err := s.d.Rights.Get(r.Context(), id); err != nil {
			return err
		}
		ds, err := s.d.Disclosure.Told(r.Context(), id)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"recipients": ds})
	}
}

func (s *server) handleLegalRequests() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		n, err := limitParam(r)
		if err != nil {
			return err
		}
		ls, err := s.d.Disclosure.LegalRequests(r.Context(), n)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"legal_requests": ls})
	}
}

func (s *server) handleRecordLegalRequest() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in disclosure.LegalInput
		if err := decode(r, &in); err != nil {
			return err
		}
		lr, err := s.d.Disclosure.RecordLegalRequest(r.Context(), a.P.Account.SubjectID, in)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, lr)
	}
}

func (s *server) handleLegalRequest() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		lr, err := s.d.Disclosure.LegalRequest(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, lr)
	}
}

type legalDecision struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

func (s *server) handleDecideLegalRequest() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in legalDecision
		if err := decode(r, &in); err != nil {
			return err
		}
		lr, err := s.d.Disclosure.Decide(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), in.Decision, in.Reason)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, lr)
	}
}

type legalNotification struct {
	Notify      string    `json:"notify"`
	NotifyAfter time.Time `json:"notify_after,omitzero"`
	Reason      string    `json:"reason"`
}

func (s *server) handleLegalNotification() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in legalNotification
		if err := decode(r, &in); err != nil {
			return err
		}
		lr, err := s.d.Disclosure.SetNotification(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), in.Notify, in.NotifyAfter, in.Reason)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, lr)
	}
}

type legalDisclosure struct {
	Subject    string   `json:"subject"`
	Categories []string `json:"categories"`
}

// handleLegalDisclosure discloses a subject's categories to the request's
// authority, with the request as the basis.
func (s *server) handleLegalDisclosure() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in legalDisclosure
		if err := decode(r, &in); err != nil {
			return err
		}
		d, err := s.d.Disclosure.DiscloseOnRequest(r.Context(), a.P.Account.SubjectID, a.P.Account.Role, r.PathValue("id"), in.Subject, in.Categories)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, d)
	}
}

// recipientKey is the API key a recipient sends as a Bearer token.
func recipientKey(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// handleRecipientAck takes a recipient's acknowledgement of events: signed
// like the webhooks it received (Standard Webhooks headers), or, for a
// recipient that pulls, with its API key.
func (s *server) handleRecipientAck() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxAckBody+1))
		if err != nil {
			return fault.Wrap(fault.Invalid, err, "the request body could not be read")
		}
		if len(body) > maxAckBody {
			return fault.New(fault.TooLarge, "an acknowledgement may be at most %d bytes", maxAckBody)
		}
		id := r.PathValue("id")
		var done []string
		if key := recipientKey(r); key != "" {
			done, err = s.d.Disclosure.AcknowledgeWithKey(r.Context(), id, key, body)
		} else {
			done, err = s.d.Disclosure.Acknowledge(r.Context(), id, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"),
				r.Header.Get("webhook-signature"), body)
		}
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"acknowledged": done})
	}
}

// handleRecipientEvents lets a recipient that pulls fetch its events.
func (s *server) handleRecipientEvents() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		n, err := limitParam(r)
		if err != nil {
			return err
		}
		evs, err := s.d.Disclosure.Pull(r.Context(), r.PathValue("id"), recipientKey(r), n)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"events": evs})
	}
}

// handleTransparency is the public transparency report as JSON (M13).
func (s *server) handleTransparency() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		rep, err := s.d.Disclosure.Transparency(r.Context())
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, rep)
	}
}
