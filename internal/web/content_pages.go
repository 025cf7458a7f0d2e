package web

// The member's "what you posted" page in the privacy centre and the
// moderators' queue.

import (
	"bytes"
	"net/http"
	"time"

	"steward/internal/content"
)

func (s *server) pageMyContent() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		o, err := s.d.Content.Overview(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		v := s.newView("What you posted", &a)
		v.Notice = map[string]string{"deleted": "Deleted, with its files.", "visibility": "Saved."}[r.URL.Query().Get("done")]
		v.Data = o
		return s.render(w, r, http.StatusOK, "content_mine", v)
	}
}

func (s *server) pageContentVisibilityPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		if _, err := s.d.Content.Edit(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), "", r.PostForm.Get("visibility")); err != nil {
			return err
		}
		http.Redirect(w, r, "/account/content?done=visibility", http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageContentSettingsPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		if err := s.d.Content.SetDefaultVisibility(r.Context(), a.P.Account.SubjectID, r.PostForm.Get("default_visibility")); err != nil {
			return err
		}
		http.Redirect(w, r, "/account/content?done=visibility", http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageContentDeletePost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.d.Content.Delete(r.Context(), a.P.Account.SubjectID, r.PathValue("id")); err != nil {
			return err
		}
		http.Redirect(w, r, "/account/content?done=deleted", http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageModeration() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		q, err := s.d.Content.Queue(r.Context(), content.Staff{ID: a.P.Account.SubjectID, Role: a.P.Account.Role})
		if err != nil {
			return err
		}
		v := s.newView("Moderation", &a)
		v.Notice = map[string]string{"decided": "Decided; the author is told."}[r.URL.Query().Get("done")]
		v.Data = map[string]any{"Items": q}
		return s.render(w, r, http.StatusOK, "moderation", v)
	}
}

func (s *server) pageModeratePost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		st := content.Staff{ID: a.P.Account.SubjectID, Role: a.P.Account.Role}
		if err := s.d.Content.Moderate(r.Context(), st, r.PathValue("id"), r.PostForm.Get("action"), r.PostForm.Get("reason"),
			r.PostForm.Get("note")); err != nil {
			return err
		}
		http.Redirect(w, r, "/admin/moderation?done=decided", http.StatusSeeOther)
		return nil
	}
}

// handleCommentsJS serves the comment thread script operators embed.
func (s *server) handleCommentsJS() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		js, err := staticFS.ReadFile("static/comments.js")
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		http.ServeContent(w, r, "comments.js", time.Time{}, bytes.NewReader(js))
		return nil
	}
}

// pageConfirmComment shows the button that publishes a guest's comment:
// opening the mailed link publishes nothing by itself.
func (s *server) pageConfirmComment() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := s.newView("Publish your comment", nil)
		v.Data = r.URL.Query().Get("token")
		return s.render(w, r, http.StatusOK, "comment_confirm", v)
	}
}

func (s *server) pageConfirmCommentPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		if err := s.d.Content.ConfirmGuest(r.Context(), r.PostForm.Get("token")); err != nil {
			return err
		}
		return s.message(w, r, http.StatusOK, "Comment published", "Thank you: your comment is published under the name you gave.", nil)
	}
}
