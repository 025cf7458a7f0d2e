package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"steward/internal/fault"
	"steward/internal/rights"
)

// requestBody is POST /api/v1/me/requests and POST /api/v1/requests.
type requestBody struct {
	Email       string            `json:"email,omitempty"` // POST /api/v1/requests only
	Type        string            `json:"type"`
	Scope       string            `json:"scope,omitempty"`
	Purposes    []string          `json:"purposes,omitempty"`
	Fields      []string          `json:"fields,omitempty"`
	Categories  []string          `json:"categories,omitempty"`
	Items       []string          `json:"items,omitempty"`
	Corrections map[string]string `json:"corrections,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Restrict    bool              `json:"restrict,omitempty"`
	Lift        bool              `json:"lift,omitempty"`
	Password    string            `json:"password,omitempty"`
}

func (b requestBody) filing() rights.Filing {
	return rights.Filing{Type: rights.Type(b.Type), Scope: b.Scope, Purposes: b.Purposes, Fields: b.Fields, Categories: b.Categories,
		Items: b.Items, Corrections: b.Corrections, Reason: b.Reason, Restrict: b.Restrict, Lift: b.Lift}
}

// requestJSON is a request as its subject sees it.
type requestJSON struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Scope           string          `json:"scope,omitempty"`
	Status          string          `json:"status"`
	Channel         string          `json:"channel"`
	ReceivedAt      time.Time       `json:"received_at"`
	DueAt           time.Time       `json:"due_at"`
	Overdue         bool            `json:"overdue"`
	VerifyBy        *time.Time      `json:"verify_by,omitempty"`
	VerifiedAt      *time.Time      `json:"verified_at,omitempty"`
	CompletedAt     *time.Time      `json:"completed_at,omitempty"`
	Extended        bool            `json:"extended"`
	ExtensionReason string          `json:"extension_reason,omitempty"`
	NeedsReview     bool            `json:"needs_review"`
	RefusalReason   string          `json:"refusal_reason,omitempty"`
	Progress        int             `json:"progress"`
	Params          rights.Params   `json:"params"`
	Result          json.RawMessage `json:"result,omitempty"`
	Download        string          `json:"download,omitempty"`
	// Token is returned once, when an emailed request is verified.
	Token string `json:"token,omitempty"`
}

// staffRequestJSON adds what staff need to decide.
type staffRequestJSON struct {
	requestJSON
	SubjectID   string            `json:"subject_id"`
	Reason      string            `json:"reason,omitempty"`
	Corrections map[string]string `json:"corrections,omitempty"`
	FiledBy     string            `json:"filed_by"`
	HandledBy   string            `json:"handled_by,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *server) requestOut(r rights.Request, download string) requestJSON {
	out := requestJSON{
		ID: r.ID, Type: string(r.Type), Scope: r.Scope, Status: string(r.Status), Channel: r.Channel,
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, Overdue: r.Overdue(s.d.Clock.Now()), VerifyBy: timePtr(r.VerifyBy),
		VerifiedAt: timePtr(r.VerifiedAt), CompletedAt: timePtr(r.CompletedAt), Extended: r.Extended(), ExtensionReason: r.ExtensionReason,
		NeedsReview: r.NeedsReview, RefusalReason: r.RefusalReason, Progress: r.Progress, Params: r.Params, Result: r.Result,
	}
	if (r.Type == rights.Access || r.Type == rights.Portability) && r.Status == rights.StatusCompleted {
		out.Download = download
	}
	return out
}

// staffReader is the staff member of a staff screen and the role they act
// in: what people wrote in their requests opens only for a role the
// policy lets answer requests.
func staffReader(a auth) rights.Staff {
	return rights.Staff{ID: a.P.Account.SubjectID, Role: a.P.Account.Role}
}

func (s *server) staffRequestOut(r rights.Request) staffRequestJSON {
	return staffRequestJSON{requestJSON: s.requestOut(r, ""), SubjectID: r.SubjectID, Reason: r.Reason, Corrections: r.Corrections,
		FiledBy: r.FiledBy, HandledBy: r.HandledBy}
}

// handleMyData is GET /api/v1/me/data: the access report. It hands over
// everything, so the session must be privileged (a login within the
// re-authentication window); otherwise the member logs in again or asks
// for a copy with their password.
func (s *server) handleMyData() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		who := rights.Requester{SubjectID: a.P.Account.SubjectID, SessionID: a.P.Session.ID,
			Reauthenticate: func(context.Context) error {
				if a.P.Privileged(s.d.Clock.Now()) {
					return nil
				}
				return fault.New(fault.ReauthNeeded,
					"log in again to read all your data here, or ask for a copy with your password (POST /api/v1/me/requests {\"type\":\"access\",\"password\":…})")
			}}
		var buf bytes.Buffer
		if err := s.d.Rights.AccessReportOf(r.Context(), who, &buf); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(buf.Bytes())
		return nil
	}
}

// fileMine files a member's request, re-authenticating first for the
// types that hand over or destroy everything.
func (s *server) fileMine(r *http.Request, a auth, b requestBody) (rights.Request, error) {
	return s.d.Rights.File(r.Context(), s.requester(a, b.Password), b.filing())
}

// requester is the signed-in member filing a request, proving their
// presence with the password they gave or a recent login.
func (s *server) requester(a auth, password string) rights.Requester {
	p := a.P
	if password != "" {
		// A password that is given is checked even in a privileged
		// session: a wrong one is refused, never ignored.
		p.Session.AuthAt = time.Time{}
	}
	return rights.Requester{SubjectID: a.P.Account.SubjectID, SessionID: a.P.Session.ID,
		Reauthenticate: func(ctx context.Context) error { return s.d.Identity.Reauthenticate(ctx, p, password) }}
}

func (s *server) handleFileMine() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var b requestBody
		if err := decode(r, &b); err != nil {
			return err
		}
		if b.Email != "" {
			return badRequest("email", "a signed-in member's request is about their own account; leave email out", nil)
		}
		req, err := s.fileMine(r, a, b)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, s.requestOut(req, downloadPath(req)))
	}
}

func downloadPath(r rights.Request) string { return "/api/v1/me/requests/" + r.ID + "/download" }

func (s *server) handleMyRequests() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		list, err := s.d.Rights.List(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		out := make([]requestJSON, 0, len(list))
		for _, req := range list {
			out = append(out, s.requestOut(req, downloadPath(req)))
		}
		return s.encode(w, http.StatusOK, map[string]any{"requests": out})
	}
}

func (s *server) handleMyRequest() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		req, err := s.d.Rights.Mine(r.Context(), a.P.Account.SubjectID, r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, s.requestOut(req, downloadPath(req)))
	}
}

func (s *server) handleMyDownload() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		ex, err := s.d.Rights.Download(r.Context(), a.P.Account.SubjectID, a.P.Session.ID, a.P.Privileged(s.d.Clock.Now()), r.PathValue("id"))
		if err != nil {
			return err
		}
		sendExport(w, ex)
		return nil
	}
}

func sendExport(w http.ResponseWriter, ex rights.Export) {
	w.Header().Set("Content-Type", ex.ContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+ex.Name+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(ex.Data)))
	w.WriteHeader(http.StatusOK)
	w.Write(ex.Data)
}

// msgFiled answers every request filed by email: the same for every
// address, known or not.
const msgFiled = "If this address can receive mail, a confirmation code is on its way to it. Send it to /api/v1/requests/{id}/verify before it expires."

type filedJSON struct {
	ID       string    `json:"id"`
	Status   string    `json:"status"`
	DueAt    time.Time `json:"due_at"`
	VerifyBy time.Time `json:"verify_by"`
	Message  string    `json:"message"`
}

// handleFileByEmail is POST /api/v1/requests: a request from someone
// without an account (or not signed in), proved by a mailed code.
func (s *server) handleFileByEmail() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var b requestBody
		if err := decode(r, &b); err != nil {
			return err
		}
		if b.Password != "" {
			return badRequest("password", "requests by email are proved with the mailed code, not a password", nil)
		}
		req, err := s.d.Rights.FileByEmail(r.Context(), b.Email, b.filing(), infoOf(r).client.IP)
		if err != nil {
			return err
		}
		verifyBy := req.VerifyBy
		if verifyBy.IsZero() {
			verifyBy = req.ReceivedAt
		}
		return s.encode(w, http.StatusAccepted, filedJSON{ID: req.ID, Status: string(rights.StatusReceived), DueAt: req.DueAt,
			VerifyBy: verifyBy, Message: strings.Replace(msgFiled, "{id}", req.ID, 1)})
	}
}

func (s *server) handleVerifyRequest() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var b struct {
			Code string `json:"code"`
		}
		if err := decode(r, &b); err != nil {
			return err
		}
		req, token, err := s.d.Rights.VerifyCode(r.Context(), r.PathValue("id"), strings.TrimSpace(b.Code))
		if err != nil {
			return err
		}
		out := s.requestOut(req, "/api/v1/requests/"+req.ID+"/download")
		out.Token = token
		return s.encode(w, http.StatusOK, out)
	}
}

// requestToken reads the bearer token of an emailed request.
func requestToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (s *server) handleRequestByToken() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := s.d.Rights.ByToken(r.Context(), r.PathValue("id"), requestToken(r))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, s.requestOut(req, "/api/v1/requests/"+req.ID+"/download"))
	}
}

func (s *server) handleDownloadByToken() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		ex, err := s.d.Rights.DownloadByToken(r.Context(), r.PathValue("id"), requestToken(r))
		if err != nil {
			return err
		}
		sendExport(w, ex)
		return nil
	}
}

// handleQueue is the staff queue, ordered by due date, overdue flagged.
func (s *server) handleQueue() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		all := r.URL.Query().Get("all") != ""
		list, err := s.d.Rights.Queue(r.Context(), staffReader(a), all, 500)
		if err != nil {
			return err
		}
		out := make([]staffRequestJSON, 0, len(list))
		overdue := 0
		for _, req := range list {
			j := s.staffRequestOut(req)
			// The queue names people by id only; what they wrote shows on
			// the request itself, whose reading is audited.
			j.Reason, j.Corrections = "", nil
			if j.Overdue {
				overdue++
			}
			out = append(out, j)
		}
		return s.encode(w, http.StatusOK, map[string]any{"requests": out, "overdue": overdue})
	}
}

func (s *server) handleStaffRequest() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		req, err := s.d.Rights.Review(r.Context(), staffReader(a), r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, s.staffRequestOut(req))
	}
}

type decisionBody struct {
	Note   string `json:"note,omitempty"`
	Reason string `json:"reason,omitempty"`
	Months int    `json:"months,omitempty"`
}

// handleDecision serves approve, refuse and extend.
func (s *server) handleDecision(action string) authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var b decisionBody
		if err := decode(r, &b); err != nil {
			return err
		}
		req, err := s.decide(r, a, action, r.PathValue("id"), b)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, s.staffRequestOut(req))
	}
}

func (s *server) decide(r *http.Request, a auth, action, id string, b decisionBody) (rights.Request, error) {
	staff := a.P.Account.SubjectID
	switch action {
	case "approve":
		return s.d.Rights.Approve(r.Context(), staff, id, b.Note)
	case "refuse":
		return s.d.Rights.Refuse(r.Context(), staff, id, b.Reason)
	case "extend":
		return s.d.Rights.Extend(r.Context(), staff, id, b.Months, b.Reason)
	}
	return rights.Request{}, fault.New(fault.NotFound, "no such action")
}

func (s *server) handleUnderAge() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var b decisionBody
		if err := decode(r, &b); err != nil {
			return err
		}
		req, err := s.d.Rights.MarkUnderAge(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), b.Note)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, s.staffRequestOut(req))
	}
}
