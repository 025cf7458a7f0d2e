package web

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/notice"
)

// The consent ledger over the API: the member's consents, the policy
// changes that wait for their acceptance, the Global Privacy Control
// signal, the GPC support statement and the public key receipts are signed
// with.

// gpcSignal reports whether the request carries the Global Privacy Control
// signal ("Sec-GPC: 1"). The signal governs the request it comes with; for
// an anonymous visitor nothing is stored to remember it (analytics and any
// handler that would share data call this on each request).
func gpcSignal(r *http.Request) bool {
	return strings.TrimSpace(r.Header.Get("Sec-GPC")) == "1"
}

// evidenceOf reduces the request to what the ledger keeps as evidence:
// browser family and truncated network, never the address or full agent.
func evidenceOf(r *http.Request) consent.Evidence {
	return consent.NewEvidence(infoOf(r).client.IP, r.UserAgent())
}

// applyGPC records the signal of a signed-in member in the ledger as an
// opt-out of every sale/sharing and third-party-marketing purpose. It reads
// first and writes only when the signal changes something, so a browser
// that sends it on every request adds one record, not one per request. A
// failure is logged and does not fail the request: the signal must still
// govern the request itself, which the caller does by reading gpcSignal.
func (s *server) applyGPC(r *http.Request, subjectID string) {
	if !gpcSignal(r) {
		return
	}
	ctx := r.Context()
	_, err := s.d.Consent.ApplyGPC(ctx, subjectID, evidenceOf(r))
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "web: record GPC signal",
			slog.String("request_id", infoOf(r).id), slog.String("subject", subjectID), slog.String("error", err.Error()))
	}
}

// gpc is middleware that records the signal of any signed-in member on any
// route. It authenticates only requests that carry both the signal and a
// session, so other requests pay nothing.
func (s *server) gpc(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gpcSignal(r) && sessionToken(r) != "" {
			if a := s.optionalAuth(r); a != nil {
				s.applyGPC(r, a.P.Account.SubjectID)
			}
		}
		next.ServeHTTP(w, r)
	})
}

type consentsBody struct {
	Consents []consent.Choice `json:"consents"`
	Records  []consent.Record `json:"records"`
	// GPC says whether this request carried the signal, and what it does.
	GPC                  gpcStatus              `json:"gpc"`
	PendingPolicyChanges []notice.PendingChange `json:"pending_policy_changes"`
	ReceiptKey           string                 `json:"receipt_key"`
}

type gpcStatus struct {
	Signal    bool     `json:"signal"`
	Purposes  []string `json:"purposes"`
	Statement string   `json:"statement"`
}

const gpcStatement = "A Global Privacy Control signal (Sec-GPC: 1) opts you out of every purpose listed here. " +
	"When it disagrees with a choice you made before, both are recorded and the signal wins; " +
	"if you later opt in explicitly on this site, that later choice wins over the signal."

func (s *server) consentsOf(ctx context.Context, r *http.Request, subjectID string) (consentsBody, error) {
	choices, err := s.d.Consent.Choices(ctx, subjectID)
	if err != nil {
		return consentsBody{}, err
	}
	recs, err := s.d.Consent.History(ctx, subjectID)
	if err != nil {
		return consentsBody{}, err
	}
	body := consentsBody{Consents: nonNilSlice(choices), Records: nonNilSlice(recs),
		GPC:        gpcStatus{Signal: gpcSignal(r), Purposes: nonNilSlice(s.d.Policy.Policy.GPCPurposes()), Statement: gpcStatement},
		ReceiptKey: s.absolute("/.well-known/steward/receipt-key")}
	if body.PendingPolicyChanges, err = s.d.Notices.Pending(ctx, subjectID); err != nil {
		return consentsBody{}, err
	}
	body.PendingPolicyChanges = nonNilSlice(body.PendingPolicyChanges)
	return body, nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// absolute makes a path absolute under the base URL when one is set.
func (s *server) absolute(path string) string {
	if s.base == nil {
		return path
	}
	return strings.TrimRight(s.base.String(), "/") + path
}

func (s *server) handleMyConsents() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		s.applyGPC(r, a.P.Account.SubjectID)
		body, err := s.consentsOf(r.Context(), r, a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, body)
	}
}

type consentChange struct {
	State string `json:"state"`
}

func (s *server) handlePutConsent() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in consentChange
		if err := decode(r, &in); err != nil {
			return err
		}
		purpose := r.PathValue("purpose")
		if s.d.Policy.Policy.Purpose(purpose) == nil {
			return fault.New(fault.NotFound, "the policy declares no purpose %q", clipText(purpose, 64))
		}
		// The signal this request may carry is recorded first, so an
		// explicit choice made with it is the later one.
		s.applyGPC(r, a.P.Account.SubjectID)
		rec, err := s.d.Consent.Change(r.Context(), consent.Change{
			SubjectID: a.P.Account.SubjectID, Purpose: purpose, State: consent.State(in.State), Method: consent.MethodAPI,
			CollectionPoint: "PUT /api/v1/me/consents/" + purpose, Evidence: evidenceOf(r),
		})
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, rec)
	}
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// handleGPCStatement serves /.well-known/gpc.json, the GPC support
// statement: this site honours the signal.
func (s *server) handleGPCStatement() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		return s.encode(w, http.StatusOK, map[string]any{"gpc": true, "lastUpdate": s.d.Policy.Policy.EffectiveDate().Format("2006-01-02")})
	}
}

// handleReceiptKey serves the public key receipts are signed with, as a
// JSON Web Key; `steward consent verify` and anyone else check receipts
// offline with it.
func (s *server) handleReceiptKey() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		signer := s.d.Consent.Signer()
		if r.URL.Query().Get("format") == "pem" {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(signer.PEM())
			return nil
		}
		w.Header().Set("Content-Type", "application/jwk+json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(append(signer.JWK(), '\n'))
		return nil
	}
}

type policyChangesBody struct {
	Version int                    `json:"version"`
	Pending []notice.PendingChange `json:"pending"`
}

func (s *server) handlePolicyChanges() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		p, err := s.d.Notices.Pending(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, policyChangesBody{Version: s.d.Policy.Number(), Pending: p})
	}
}

func (s *server) handleAcceptPolicy() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		n, err := strconv.Atoi(r.PathValue("version"))
		if err != nil || n < 1 {
			return fault.FieldError("version", "the version must be a positive integer")
		}
		if err := s.d.Notices.Accept(r.Context(), a.P.Account.SubjectID, n, consent.MethodAPI, evidenceOf(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
