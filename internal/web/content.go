package web

// What members post, over the API: their items and files, public threads,
// reports, and the moderation queue.

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"steward/internal/content"
	"steward/internal/fault"
)

// commentsCORS lets the declared origins of a site read its threads and
// post guests' comments, without credentials: a guest comments with an
// address, not a session. It reports whether the request's origin may.
func (s *server) commentsCORS(w http.ResponseWriter, r *http.Request, site string) bool {
	origin := r.Header.Get("Origin")
	w.Header().Add("Vary", "Origin")
	if origin == "" {
		return false
	}
	for _, st := range s.d.Activity.Sites() {
		if st.ID == site && st.AllowsOrigin(origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			return true
		}
	}
	return false
}

func (s *server) handleThread() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		s.commentsCORS(w, r, r.PathValue("site"))
		items, err := s.d.Content.Thread(r.Context(), r.PathValue("site"), r.URL.Query().Get("thread"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"items": items})
	}
}

func (s *server) handleCommentsPreflight() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !s.commentsCORS(w, r, r.PathValue("site")) {
			return fault.New(fault.Forbidden, "this origin may not comment on this site")
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// handleGuestComment takes a comment with a name and an address alone,
// from the site's own pages (a declared origin) or from a client that
// sends no Origin; it shows once the link mailed to the address is
// followed. The answer is the same whether or not the address is known.
func (s *server) handleGuestComment() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		site := r.PathValue("site")
		if !s.commentsCORS(w, r, site) && r.Header.Get("Origin") != "" {
			return fault.New(fault.Forbidden, "this origin may not comment on this site")
		}
		var in content.Guest
		if err := decode(r, &in); err != nil {
			return err
		}
		in.Site = site
		if err := s.d.Content.PostAsGuest(r.Context(), in); err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, map[string]string{"status": "pending",
			"message": "Check your inbox: your comment shows once you follow the link we sent."})
	}
}

func (s *server) handleMyContent() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		o, err := s.d.Content.Overview(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, o)
	}
}

func (s *server) handlePostContent() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in content.Draft
		if err := decode(r, &in); err != nil {
			return err
		}
		it, err := s.d.Content.Post(r.Context(), a.P.Account.SubjectID, in)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, it)
	}
}

type contentSettings struct {
	DefaultVisibility string `json:"default_visibility"`
}

func (s *server) handleContentSettings() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in contentSettings
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Content.SetDefaultVisibility(r.Context(), a.P.Account.SubjectID, in.DefaultVisibility); err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, in)
	}
}

type contentEdit struct {
	Body       string `json:"body"`
	Visibility string `json:"visibility"`
}

func (s *server) handleEditContent() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in contentEdit
		if err := decode(r, &in); err != nil {
			return err
		}
		it, err := s.d.Content.Edit(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), in.Body, in.Visibility)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, it)
	}
}

func (s *server) handleDeleteContent() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.d.Content.Delete(r.Context(), a.P.Account.SubjectID, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// handleUpload takes a photo or video as the raw request body, its name in
// the name query parameter. The body streams to the content service, which
// spools it encrypted, checks and cleans it: it is never held whole.
func (s *server) handleUpload() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		lim := s.d.Content.Limits()
		max := max(lim.MaxPhoto, lim.MaxVideo)
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			return fault.New(fault.TooLarge, "the file is larger than the %d MB this site takes", max>>20)
		}
		body := tooLarge{http.MaxBytesReader(w, r.Body, max), max}
		f, err := s.d.Content.Attach(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), r.URL.Query().Get("name"), body)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, f)
	}
}

// handlePutPicture takes the member's profile picture as the raw body.
func (s *server) handlePutPicture() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		lim := s.d.Content.Limits()
		if r.ContentLength > lim.MaxPhoto {
			w.Header().Set("Connection", "close")
			return fault.New(fault.TooLarge, "a picture may be at most %d MB", lim.MaxPhoto>>20)
		}
		f, err := s.d.Content.SetPicture(r.Context(), a.P.Account.SubjectID, tooLarge{http.MaxBytesReader(w, r.Body, lim.MaxPhoto), lim.MaxPhoto})
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, f)
	}
}

func (s *server) handleDeletePicture() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.d.Content.RemovePicture(r.Context(), a.P.Account.SubjectID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// tooLarge reads an upload and turns the body limit's error into a 413.
type tooLarge struct {
	r   io.Reader
	max int64
}

func (t tooLarge) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if _, over := errors.AsType[*http.MaxBytesError](err); over {
		return n, fault.New(fault.TooLarge, "the file is larger than the %d MB this site takes", t.max>>20)
	}
	return n, err
}

// handleFile serves a file: to its author, or to anyone for a visible
// public item. It is sent as an attachment of the type found when it was
// uploaded, never sniffed and never run.
func (s *server) handleFile(thumb bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		reader := ""
		if p, err := s.d.Identity.Authenticate(r.Context(), sessionToken(r)); err == nil && p.SecondFactor == "" {
			reader = p.Account.SubjectID // a session owing its second factor reads as anyone
		}
		rc, f, err := s.d.Content.OpenFile(r.Context(), reader, r.PathValue("id"), thumb)
		if err != nil {
			return err
		}
		defer rc.Close()
		h := w.Header()
		h.Set("Content-Type", f.Mime)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		h.Set("Content-Disposition", "inline; filename=\""+f.ID+extension(f.Mime)+"\"")
		if !thumb {
			h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return nil
		}
		_, err = io.Copy(w, rc)
		if err != nil {
			s.log.Warn("content: a file stopped while it was sent", "file", f.ID, "err", err)
		}
		return nil
	}
}

func extension(mime string) string {
	switch mime {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "video/mp4":
		return ".mp4"
	case "video/quicktime":
		return ".mov"
	}
	return ""
}

type reportInput struct {
	Reason string `json:"reason"`
}

func (s *server) handleReportItem() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in reportInput
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Content.Report(r.Context(), r.PathValue("id"), in.Reason); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
}

func (s *server) handleModerationQueue() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		q, err := s.d.Content.Queue(r.Context(), content.Staff{ID: a.P.Account.SubjectID, Role: a.P.Account.Role})
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"items": q})
	}
}

type moderationInput struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
	Note   string `json:"note"`
}

func (s *server) handleModerate() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in moderationInput
		if err := decode(r, &in); err != nil {
			return err
		}
		st := content.Staff{ID: a.P.Account.SubjectID, Role: a.P.Account.Role}
		if err := s.d.Content.Moderate(r.Context(), st, r.PathValue("id"), in.Action, in.Reason, strings.TrimSpace(in.Note)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
