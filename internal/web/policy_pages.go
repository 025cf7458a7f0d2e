package web

import (
	"html/template"
	"net/http"
	"steward/internal/fault"
	"steward/internal/policy"
	"strconv"
	"time"
)

type noticeData struct {
	Number        int
	EffectiveDate time.Time
	Current       bool
	Body          template.HTML
}

// pagePrivacy serves the notice of the policy in force (promise M16).
func (s *server) pagePrivacy() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := s.d.Versions.Get(r.Context(), s.d.Policy.Number())
		if err != nil {
			return err
		}
		return s.notice(w, r, s.d.Policy.Policy, v, true)
	}
}

// pagePrivacyVersion serves any published version, as it was (M16).
func (s *server) pagePrivacyVersion() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 1 {
			return fault.New(fault.NotFound, "there is no such version of the privacy notice")
		}
		v, err := s.d.Versions.Get(r.Context(), n)
		if err != nil {
			return err
		}
		p, err := v.Policy()
		if err != nil {
			return err
		}
		return s.notice(w, r, p, v, n == s.d.Policy.Number())
	}
}

func (s *server) notice(w http.ResponseWriter, r *http.Request, p *policy.Policy, v policy.Version, current bool) error {
	all, err := s.d.Versions.List(r.Context())
	if err != nil {
		return err
	}
	meta := policy.Meta{Number: v.Number, EffectiveDate: v.EffectiveDate, Hash: v.Hash, VersionsPath: "/privacy/versions/"}
	for _, o := range all {
		if o.Number < v.Number {
			meta.Previous = append(meta.Previous, policy.VersionRef{Number: o.Number, EffectiveDate: o.EffectiveDate,
				Significant: o.Significant})
		}
	}
	body, err := policy.RenderHTMLBody(p, meta)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-cache")
	view := s.newView("Privacy notice", s.optionalAuth(r))
	view.Data = noticeData{Number: v.Number, EffectiveDate: v.EffectiveDate, Current: current, Body: body}
	return s.render(w, r, http.StatusOK, "privacy", view)
}

func (s *server) pagePrivacyVersions() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		all, err := s.d.Versions.List(r.Context())
		if err != nil {
			return err
		}
		// Newest first.
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
		w.Header().Set("Cache-Control", "no-cache")
		v := s.newView("Versions of the privacy notice", s.optionalAuth(r))
		v.Data = all
		return s.render(w, r, http.StatusOK, "versions", v)
	}
}
