package web

// What members post, over the API: their items and files, public threads,
// reports, and the moderation queue.

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"steward/internal/content"
	"steward/internal/fault"
)

func (s *server) handleThread() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		items, err := s.d.Content.Thread(r.Context(), r.PathValue("site"), r.URL.Query().Get("thread"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"items": items})
	}
}

func (s *server) handleMyContent() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		items, err := s.d.Content.Mine(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		decisions, err := s.d.Content.Decisions(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"items": items, "decisions": decisions})
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
		body := http.MaxBytesReader(w, r.Body, max)
		f, err := s.d.Content.Attach(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), r.URL.Query().Get("name"), body)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, f)
	}
}

// handleFile serves a file: to its author, or to anyone for a visible
// public item. It is sent as an attachment of the type found when it was
// uploaded, never sniffed and never run.
func (s *server) handleFile(thumb bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		reader := ""
		if p, err := s.d.Identity.Authenticate(r.Context(), sessionToken(r)); err == nil {
			reader = p.Account.SubjectID
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
