package web

import (
	"net/http"
	"steward/internal/notice"
)

func (s *server) pageBroadcastPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		_, err := s.d.Notices.Broadcast(r.Context(), a.P.Account.SubjectID, notice.BroadcastInput{Kind: notice.Kind(r.PostForm.Get("kind")),
			Subject: r.PostForm.Get("subject"), Text: normalizeNewlines(r.PostForm.Get("text"))})
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderNewsletterAdmin(w, r, a, status, "", errs)
			})
		}
		http.Redirect(w, r, "/admin/newsletters?done=notice", http.StatusSeeOther)
		return nil
	}
}
