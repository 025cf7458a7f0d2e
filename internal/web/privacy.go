package web

import (
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"steward/internal/fault"
	"steward/internal/policy"
)

// policyDocument is GET /api/v1/policy: the compiled policy in force with
// its published version number and hash.
type policyDocument struct {
	Version       int            `json:"version"`
	Hash          string         `json:"hash"`
	EffectiveDate string         `json:"effective_date"`
	Policy        *policy.Policy `json:"policy"`
}

func (s *server) handlePolicyJSON() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		s.encode(w, r, http.StatusOK, policyDocument{
			Version:       s.d.PolicyVersion,
			Hash:          s.d.Policy.Hash(),
			EffectiveDate: s.d.Policy.Version,
			Policy:        s.d.Policy,
		})
	})
}

type noticeData struct {
	Number        int
	EffectiveDate time.Time
	Current       bool
	Body          template.HTML
}

// pagePrivacy serves the notice of the policy in force (promise M16).
func (s *server) pagePrivacy() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := policy.Get(r.Context(), s.d.DB, s.d.PolicyVersion)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		s.notice(w, r, s.d.Policy, v, true)
	})
}

// pagePrivacyVersion serves any published version, as it was (M16).
func (s *server) pagePrivacyVersion() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 1 {
			s.errorPage(w, r, fault.New(fault.NotFound, "there is no such version of the privacy notice"))
			return
		}
		v, err := policy.Get(r.Context(), s.d.DB, n)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		p, err := v.Policy()
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		s.notice(w, r, p, v, n == s.d.PolicyVersion)
	})
}

func (s *server) notice(w http.ResponseWriter, r *http.Request, p *policy.Policy, v policy.Version, current bool) {
	all, err := policy.List(r.Context(), s.d.DB)
	if err != nil {
		s.errorPage(w, r, err)
		return
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
		s.errorPage(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	view := s.newView("Privacy notice", s.optionalAuth(r))
	view.Data = noticeData{Number: v.Number, EffectiveDate: v.EffectiveDate, Current: current, Body: body}
	s.render(w, r, http.StatusOK, "privacy", view)
}

func (s *server) pagePrivacyVersions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		all, err := policy.List(r.Context(), s.d.DB)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		// Newest first.
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
		w.Header().Set("Cache-Control", "no-cache")
		v := s.newView("Versions of the privacy notice", s.optionalAuth(r))
		v.Data = all
		s.render(w, r, http.StatusOK, "versions", v)
	})
}

// handleStatic serves the embedded stylesheet. Assets are public and
// change only with a release, so they may be cached for a while.
func (s *server) handleStatic() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			s.fail(w, r, fault.New(fault.NotFound, "no such file"))
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// handleDemo serves the operator's demo site, when there is one.
func (s *server) handleDemo() http.Handler {
	if s.d.Config.DemoDir == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.fail(w, r, fault.New(fault.NotFound, "no demo site is served"))
		})
	}
	return http.StripPrefix("/demo/", http.FileServerFS(s.d.Config.DemoDir))
}
