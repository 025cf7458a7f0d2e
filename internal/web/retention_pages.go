package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"steward/internal/retention"
)

type retentionPageData struct {
	Report     retention.Report
	Holds      []retention.Hold
	Categories []string
	Now        time.Time
	ReviewBy   time.Time // holds expiring before it are due for review
}

func (s *server) pageRetention() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		rep, err := s.d.Retention.Plan(r.Context())
		if err != nil {
			return err
		}
		holds, err := s.d.Retention.Holds(r.Context(), false)
		if err != nil {
			return err
		}
		now := s.d.Clock.Now()
		d := retentionPageData{Report: rep, Holds: holds, Now: now, ReviewBy: now.AddDate(0, 1, 0)}
		for _, c := range s.d.Policy.Policy.Categories() {
			d.Categories = append(d.Categories, c.ID)
		}
		v := s.newView("Retention and legal holds", &a)
		switch r.URL.Query().Get("done") {
		case "placed":
			v.Notice = "The hold was placed: what it covers is neither swept nor erased until it is lifted or expires."
		case "reviewed":
			v.Notice = "The hold's expiry was moved."
		case "lifted":
			v.Notice = "The hold was lifted; what it kept goes at the next sweep if its time is up."
		}
		v.Data = d
		return s.render(w, r, http.StatusOK, "retention", v)
	}
}

func (s *server) pagePlaceHoldPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		exp, err := formDate(r, "expires_at")
		if err != nil {
			return err
		}
		source := strings.TrimSpace(r.PostForm.Get("source"))
		if source == "" {
			source = "staff"
		}
		if _, err := s.d.Retention.Place(r.Context(), a.P.Account.SubjectID, retention.Hold{SubjectID: strings.TrimSpace(r.PostForm.Get("subject_id")),
			Category: r.PostForm.Get("category"), Reason: r.PostForm.Get("reason"), Source: source, ExpiresAt: exp}); err != nil {
			return err
		}
		http.Redirect(w, r, "/admin/retention?done=placed", http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageReviewHoldPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		exp, err := formDate(r, "expires_at")
		if err != nil {
			return err
		}
		if _, err := s.d.Retention.Review(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), exp); err != nil {
			return err
		}
		http.Redirect(w, r, "/admin/retention?done=reviewed#"+url.PathEscape(r.PathValue("id")), http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageLiftHoldPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if _, err := s.d.Retention.Lift(r.Context(), a.P.Account.SubjectID, r.PathValue("id")); err != nil {
			return err
		}
		http.Redirect(w, r, "/admin/retention?done=lifted", http.StatusSeeOther)
		return nil
	}
}
