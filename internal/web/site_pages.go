package web

import (
	"io/fs"
	"net/http"
	"steward/internal/fault"
	"strings"
)

func (s *server) pageHome() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := s.newView("Welcome", s.optionalAuth(r))
		v.Data = struct{ Demo, Support bool }{Demo: s.d.Config.DemoDir != nil, Support: s.d.Support.Enabled()}
		return s.render(w, r, http.StatusOK, "home", v)
	}
}

// handleStatic serves the embedded stylesheet. Assets are public and
// change only with a release, so they may be cached for a while.
func (s *server) handleStatic() handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return func(w http.ResponseWriter, r *http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/") {
			return fault.New(fault.NotFound, "no such file")
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
		return nil
	}
}

// handleDemo serves the operator's demo site, when there is one.
func (s *server) handleDemo() handler {
	if s.d.Config.DemoDir == nil {
		return func(w http.ResponseWriter, r *http.Request) error {
			return fault.New(fault.NotFound, "no demo site is served")
		}
	}
	files := http.StripPrefix("/demo/", http.FileServerFS(s.d.Config.DemoDir))
	return func(w http.ResponseWriter, r *http.Request) error {
		files.ServeHTTP(w, r)
		return nil
	}
}
