package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/identity"
	"steward/internal/mail"
)

// staffActor names a staff member in the audit log by pseudonymous id.
func staffActor(a auth) string { return "staff:" + a.P.Account.SubjectID }

// recordStaffRead audits a staff member's view of personal data before it
// is shown: if the record cannot be written, nothing is shown.
func (s *server) recordStaffRead(r *http.Request, a auth, subjectID string, detail map[string]string) error {
	return s.d.Audit.Append(r.Context(), audit.Event{
		Actor:   staffActor(a),
		Action:  "staff.read",
		Subject: subjectID,
		Detail:  detail,
	})
}

type adminData struct {
	Role           string
	Outbox, Audit  bool
	MailConfigured bool
	Links          []consoleLink
}

// consoleLink is one page of the staff console, shown to the roles that
// may open it (the routes in routes.go enforce the same roles).
type consoleLink struct {
	Href, Label string
	roles       []string
}

var consoleLinks = []consoleLink{
	{"/admin/requests", "Rights requests, by due date", []string{"admin", "privacy"}},
	{"/admin/newsletters", "Newsletters, campaigns and unsubscribe on request", []string{"admin", "privacy", "support"}},
	{"/admin/analytics", "Analytics (aggregates only)", []string{"admin", "analyst"}},
	{"/admin/moderation", "Moderation (reported posts and comments)", []string{"moderator"}},
	{"/admin/support", "Support desk: requests, answers and recorded calls", []string{"support", "quality"}},
	{"/admin/retention", "Retention: what the next sweep removes, and legal holds", []string{"admin", "privacy"}},
	{"/admin/disclosures", "Disclosures: recipients, deliveries and the register", []string{"admin", "privacy"}},
	{"/admin/legal-requests", "Legal requests and the transparency report", []string{"privacy"}},
}

func (s *server) pageAdmin() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		v := s.newView("Staff console", &a)
		data := adminData{
			Role:           a.P.Account.Role,
			Outbox:         identity.HasRole(a.P.Account, "admin"),
			Audit:          identity.HasRole(a.P.Account, "admin", "privacy"),
			MailConfigured: s.d.Outbox.Configured(),
		}
		for _, l := range consoleLinks {
			if identity.HasRole(a.P.Account, l.roles...) {
				data.Links = append(data.Links, l)
			}
		}
		v.Data = data
		return s.render(w, r, http.StatusOK, "admin", v)
	}
}

// outboxRow is a message as the list shows it: the address shortened, so
// scanning the list reveals no one; opening a message shows it whole. A
// message whose purpose the staff member's role does not hold is listed
// as withheld, with the reason, and shows neither.
type outboxRow struct {
	ID, To, Kind, Purpose, Subject, Status, Withheld string
	CreatedAt                                        time.Time
}

// outboxReader is the staff member reading the outbox, in their role: the
// door opens each message for its own purpose, which the role must hold.
func outboxReader(a auth) mail.Reader {
	return mail.AsStaff(a.P.Account.SubjectID, a.P.Account.Role)
}

// maskAddress keeps the first character of the local part and the domain.
func maskAddress(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}

const outboxPageSize = 100

func (s *server) pageOutbox() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		list, err := s.d.Outbox.List(r.Context(), outboxReader(a), outboxPageSize)
		if err != nil {
			return err
		}
		if err := s.recordStaffRead(r, a, "", map[string]string{"view": "outbox.list", "count": strconv.Itoa(len(list))}); err != nil {
			return err
		}
		rows := make([]outboxRow, 0, len(list))
		for _, m := range list {
			row := outboxRow{ID: m.ID, Kind: m.Kind, Purpose: m.Purpose, Subject: m.Subject, Status: m.Status, Withheld: m.Withheld,
				CreatedAt: m.CreatedAt}
			if m.Withheld == "" {
				row.To = maskAddress(m.To)
			}
			rows = append(rows, row)
		}
		v := s.newView("Outbox", &a)
		v.Data = struct {
			Configured bool
			Messages   []outboxRow
		}{s.d.Outbox.Configured(), rows}
		return s.render(w, r, http.StatusOK, "outbox", v)
	}
}

func (s *server) pageOutboxMessage() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		m, err := s.d.Outbox.Open(r.Context(), outboxReader(a), r.PathValue("id"))
		if err != nil {
			return err
		}
		if err := s.recordStaffRead(r, a, m.SubjectID, map[string]string{"view": "outbox.message", "message": m.ID}); err != nil {
			return err
		}
		v := s.newView("Message", &a)
		v.Data = m
		return s.render(w, r, http.StatusOK, "outbox_message", v)
	}
}

const auditPageSize = 50

type auditData struct {
	Entries []audit.Entry
	Report  *audit.Report
	Older   int64 // seq to page back from; 0 when this is the oldest page
}

// pageAudit lists audit entries newest first, page by page. The chain is
// verified on request only: verification reads the whole log.
func (s *server) pageAudit() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		q := r.URL.Query()
		var before int64
		if b := q.Get("before"); b != "" {
			n, err := strconv.ParseInt(b, 10, 64)
			if err != nil || n < 1 {
				return badRequest("before", "before must be a positive entry number", err)
			}
			before = n
		}
		entries, err := s.d.Audit.List(r.Context(), before, auditPageSize)
		if err != nil {
			return err
		}
		d := auditData{Entries: entries}
		if len(entries) == auditPageSize && entries[len(entries)-1].Seq > 1 {
			d.Older = entries[len(entries)-1].Seq
		}
		if q.Get("verify") != "" {
			rep, err := s.d.Audit.Verify(r.Context())
			if err != nil {
				return err
			}
			d.Report = &rep
		}
		detail := map[string]string{"view": "audit", "count": strconv.Itoa(len(entries))}
		if before > 0 {
			detail["before"] = strconv.FormatInt(before, 10)
		}
		if err := s.recordStaffRead(r, a, "", detail); err != nil {
			return err
		}
		v := s.newView("Audit log", &a)
		v.Data = d
		return s.render(w, r, http.StatusOK, "audit", v)
	}
}
