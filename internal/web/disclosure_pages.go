package web

// Pages of disclosures: the staff register (recipients, deliveries, the
// disclosure log with filters), the legal-request register with its form,
// and the public transparency report.

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"steward/internal/disclosure"
)

type adminDisclosuresData struct {
	Filter      disclosure.Filter
	From, To    string
	Recipients  []disclosure.RecipientInfo
	Disclosures []disclosure.Disclosure
	Deliveries  []disclosure.Delivery
}

func (s *server) pageAdminDisclosures() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.disclosureFilter(r)
		if err != nil {
			return err
		}
		d := adminDisclosuresData{Filter: f, From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to")}
		if d.Recipients, err = s.d.Disclosure.Recipients(r.Context()); err != nil {
			return err
		}
		if d.Disclosures, err = s.d.Disclosure.Log(r.Context(), f); err != nil {
			return err
		}
		if d.Deliveries, err = s.d.Disclosure.Deliveries(r.Context(), f.Recipient, "", 100); err != nil {
			return err
		}
		v := s.newView("Disclosures", &a)
		if r.URL.Query().Get("done") == "told" {
			v.Notice = "Recorded: the recipient was told by hand."
		}
		v.Data = d
		return s.render(w, r, http.StatusOK, "admin_disclosures", v)
	}
}

func (s *server) pageToldByHandPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if _, err := s.d.Disclosure.MarkTold(r.Context(), a.P.Account.SubjectID, r.PathValue("id")); err != nil {
			return err
		}
		http.Redirect(w, r, "/admin/disclosures?done=told", http.StatusSeeOther)
		return nil
	}
}

type adminLegalData struct {
	Requests   []disclosure.LegalRequest
	Kinds      []string
	Decisions  []string
	Recipients []disclosure.RecipientInfo
	Form       url.Values
}

func (s *server) pageAdminLegal() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderAdminLegal(w, r, a, http.StatusOK, nil, nil)
	}
}

func (s *server) renderAdminLegal(w http.ResponseWriter, r *http.Request, a auth, status int, form url.Values, errs map[string]string) error {
	list, err := s.d.Disclosure.LegalRequests(r.Context(), 200)
	if err != nil {
		return err
	}
	rs, err := s.d.Disclosure.Recipients(r.Context())
	if err != nil {
		return err
	}
	var auths []disclosure.RecipientInfo
	for _, rc := range rs {
		if rc.Role == "authority" {
			auths = append(auths, rc)
		}
	}
	v := s.newView("Legal requests", &a)
	if errs != nil {
		v.Errors = errs
	}
	if r.URL.Query().Get("done") == "recorded" {
		v.Notice = "The legal request was recorded."
	}
	v.Data = adminLegalData{Requests: list, Kinds: disclosure.Kinds, Decisions: disclosure.Decisions, Recipients: auths, Form: form}
	return s.render(w, r, status, "admin_legal", v)
}

// legalFromForm reads the register's form: dates as 2006-01-02, lists as
// space- or comma-separated words.
func legalFromForm(f url.Values) (disclosure.LegalInput, error) {
	in := disclosure.LegalInput{Kind: f.Get("kind"), Jurisdiction: f.Get("jurisdiction"), Authority: f.Get("authority"),
		Recipient: f.Get("recipient"), Subjects: words(f.Get("subjects")), Categories: words(f.Get("categories")),
		Decision: f.Get("decision"), DecisionReason: f.Get("decision_reason"), Notify: f.Get("notify"), NotifyReason: f.Get("notify_reason")}
	for name, to := range map[string]*time.Time{"deadline": &in.Deadline, "notify_after": &in.NotifyAfter} {
		if v := strings.TrimSpace(f.Get(name)); v != "" {
			t, err := time.Parse("2006-01-02", v)
			if err != nil {
				return in, badRequest(name, name+" is a date such as 2026-12-31", err)
			}
			*to = t
		}
	}
	return in, nil
}

func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func (s *server) pageRecordLegalPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		in, err := legalFromForm(r.PostForm)
		if err == nil {
			_, err = s.d.Disclosure.RecordLegalRequest(r.Context(), a.P.Account.SubjectID, in)
		}
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderAdminLegal(w, r, a, status, r.PostForm, errs)
			})
		}
		http.Redirect(w, r, "/admin/legal-requests?done=recorded", http.StatusSeeOther)
		return nil
	}
}

// pageTransparency is the public transparency report (M13).
func (s *server) pageTransparency() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		rep, err := s.d.Disclosure.Transparency(r.Context())
		if err != nil {
			return err
		}
		v := s.newView("Transparency report", nil)
		v.Data = rep
		return s.render(w, r, http.StatusOK, "transparency", v)
	}
}

type adminLegalDetail struct {
	R         disclosure.LegalRequest
	Decisions []string
	Done      []disclosure.Disclosure
}

func (s *server) pageAdminLegalRequest() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderAdminLegalRequest(w, r, a, r.PathValue("id"), http.StatusOK, nil)
	}
}

func (s *server) renderAdminLegalRequest(w http.ResponseWriter, r *http.Request, a auth, id string, status int, errs map[string]string) error {
	lr, err := s.d.Disclosure.LegalRequest(r.Context(), id)
	if err != nil {
		return err
	}
	done, err := s.d.Disclosure.Log(r.Context(), disclosure.Filter{Basis: string(disclosure.BasisLegalRequest), BasisRef: lr.ID,
		Recipient: lr.Recipient, Limit: 500})
	if err != nil {
		return err
	}
	v := s.newView("Legal request "+lr.ID, &a)
	if errs != nil {
		v.Errors = errs
	}
	switch r.URL.Query().Get("done") {
	case "decision":
		v.Notice = "The decision was recorded."
	case "notification":
		v.Notice = "The notification decision was changed."
	case "disclosed":
		v.Notice = "The disclosure was recorded."
	}
	v.Data = adminLegalDetail{R: lr, Decisions: disclosure.Decisions, Done: done}
	return s.render(w, r, status, "admin_legal_request", v)
}

// pageLegalActionPost takes the detail page's forms: the decision, the
// notification decision, a disclosure on the request.
func (s *server) pageLegalActionPost(action string) authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		id, f := r.PathValue("id"), r.PostForm
		var err error
		switch action {
		case "decision":
			_, err = s.d.Disclosure.Decide(r.Context(), a.P.Account.SubjectID, id, f.Get("decision"), f.Get("reason"))
		case "notification":
			var after time.Time
			if v := strings.TrimSpace(f.Get("notify_after")); v != "" {
				if after, err = time.Parse("2006-01-02", v); err != nil {
					err = badRequest("notify_after", "notify_after is a date such as 2026-12-31", err)
				}
			}
			if err == nil {
				_, err = s.d.Disclosure.SetNotification(r.Context(), a.P.Account.SubjectID, id, f.Get("notify"), after, f.Get("reason"))
			}
		case "disclosed":
			_, err = s.d.Disclosure.DiscloseOnRequest(r.Context(), a.P.Account.SubjectID, a.P.Account.Role, id,
				strings.TrimSpace(f.Get("subject")), words(f.Get("categories")))
		}
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderAdminLegalRequest(w, r, a, id, status, errs)
			})
		}
		http.Redirect(w, r, "/admin/legal-requests/"+url.PathEscape(id)+"?done="+action, http.StatusSeeOther)
		return nil
	}
}
