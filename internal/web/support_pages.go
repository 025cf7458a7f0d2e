package web

// The support desk's pages: a member's requests in the privacy centre, the
// form for someone without an account and the link that releases it, and
// the staff console's queue and threads. Every form works without script;
// the forms with files are multipart, read part by part (readSupportForm).

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/support"
)

// supportNotice is the notice a page shows after a form went through.
func supportNotice(done string) string {
	return map[string]string{
		"opened":   "Your request was sent. We answer here and by mail.",
		"replied":  "Added to your request.",
		"answered": "Your answer was added and mailed to the requester.",
		"recorded": "The recording was attached.",
		"status":   "The status was changed.",
		"assigned": "The assignment was changed.",
		"phone":    "The request was opened for the caller.",
	}[done]
}

// formErrors keeps the errors of the fields a page draws beside them and
// moves any other to the top of the page, so no refusal goes unshown.
func formErrors(errs map[string]string, fields ...string) map[string]string {
	out := map[string]string{}
	for k, v := range errs {
		if k != "" && !slices.Contains(fields, k) {
			k = ""
		}
		if out[k] == "" {
			out[k] = v
		}
	}
	return out
}

// The member's requests.

type supportMineData struct {
	Enabled  bool
	Requests []support.Request
	Form     map[string]string
}

func (s *server) renderSupportMine(w http.ResponseWriter, r *http.Request, a auth, status int, errs, form map[string]string) error {
	d := supportMineData{Enabled: s.d.Support.Enabled(), Form: form}
	if d.Form == nil {
		d.Form = map[string]string{}
	}
	if d.Enabled {
		list, err := s.d.Support.Mine(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		d.Requests = list
	}
	v := s.newView("Your support requests", &a)
	v.Errors = formErrors(errs, "title", "text", "files")
	v.Notice = supportNotice(r.URL.Query().Get("done"))
	v.Data = d
	return s.render(w, r, status, "support_mine", v)
}

func (s *server) pageMySupport() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderSupportMine(w, r, a, http.StatusOK, nil, nil)
	}
}

func (s *server) pageOpenSupportPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.readSupportForm(w, r, "files", false, "title", "text")
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderSupportMine(w, r, a, status, errs, nil)
			})
		}
		defer f.close()
		t, err := s.d.Support.Open(r.Context(), a.P.Account.SubjectID, f.get("title"), f.get("text"), f.files)
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderSupportMine(w, r, a, status, errs, f.values)
			})
		}
		http.Redirect(w, r, "/account/support/"+url.PathEscape(t.ID)+"?done=opened", http.StatusSeeOther)
		return nil
	}
}

type supportThreadData struct {
	Thread support.Thread
	Form   map[string]string
}

func (s *server) renderSupportThread(w http.ResponseWriter, r *http.Request, a auth, id string, status int, errs, form map[string]string) error {
	t, err := s.d.Support.ThreadFor(r.Context(), a.P.Account.SubjectID, id)
	if err != nil {
		return err
	}
	v := s.newView("Support request", &a)
	v.Errors = formErrors(errs, "text", "files")
	if form == nil {
		form = map[string]string{}
	}
	v.Notice = supportNotice(r.URL.Query().Get("done"))
	v.Data = supportThreadData{Thread: t, Form: form}
	return s.render(w, r, status, "support_thread", v)
}

func (s *server) pageMySupportThread() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderSupportThread(w, r, a, r.PathValue("id"), http.StatusOK, nil, nil)
	}
}

func (s *server) pageSupportReplyPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		id := r.PathValue("id")
		f, err := s.readSupportForm(w, r, "files", false, "text")
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderSupportThread(w, r, a, id, status, errs, nil)
			})
		}
		defer f.close()
		if _, err := s.d.Support.Reply(r.Context(), a.P.Account.SubjectID, id, f.get("text"), f.files); err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderSupportThread(w, r, a, id, status, errs, f.values)
			})
		}
		http.Redirect(w, r, "/account/support/"+url.PathEscape(id)+"?done=replied", http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageMySupportFile() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.sendSupportFile(w, r, support.Reader{Member: a.P.Account.SubjectID})
	}
}

// Someone without an account: the form, then the mailed link.

type supportPublicData struct {
	Enabled bool
	Form    map[string]string
}

func (s *server) renderPublicSupport(w http.ResponseWriter, r *http.Request, status int, errs, form map[string]string) error {
	if form == nil {
		form = map[string]string{}
	}
	v := s.newView("Ask our support", s.optionalAuth(r))
	v.Errors = formErrors(errs, "email", "title", "text")
	v.Data = supportPublicData{Enabled: s.d.Support.Enabled(), Form: form}
	return s.render(w, r, status, "support_public", v)
}

func (s *server) pagePublicSupport() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.renderPublicSupport(w, r, http.StatusOK, nil, nil)
	}
}

func (s *server) pagePublicSupportPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		form := map[string]string{"email": r.PostForm.Get("email"), "title": r.PostForm.Get("title"), "text": r.PostForm.Get("text")}
		if err := s.d.Support.Submit(r.Context(), form["email"], form["title"], form["text"], infoOf(r).client.IP); err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderPublicSupport(w, r, status, errs, form)
			})
		}
		return s.message(w, r, http.StatusOK, "Check your inbox",
			"We sent a link to the address you gave. Your request reaches our support team once you follow it; "+
				"until then it is kept sealed, and deleted unread if the link is not followed in time.", nil)
	}
}

// pageConfirmSupport shows the button that releases a held request:
// opening the mailed link sends nothing by itself, so a link checker
// cannot.
func (s *server) pageConfirmSupport() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := s.newView("Send your support request", s.optionalAuth(r))
		v.Data = r.URL.Query().Get("token")
		return s.render(w, r, http.StatusOK, "support_confirm", v)
	}
}

func (s *server) pageConfirmSupportPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		if _, err := s.d.Support.Confirm(r.Context(), r.PostForm.Get("token")); err != nil {
			return err
		}
		return s.message(w, r, http.StatusOK, "Request sent",
			"Thank you: your request reached our support team. We answer by mail; reply to our answer to add to it.", nil)
	}
}

// The staff console.

type supportQueueData struct {
	Items    []support.Request
	Status   string
	Next     string // the next page's link, "" on the last page
	CanWrite bool
	Form     map[string]string
}

func (s *server) renderSupportQueue(w http.ResponseWriter, r *http.Request, a auth, status int, errs, form map[string]string) error {
	q, err := s.supportQueue(r, a)
	if err != nil {
		return err
	}
	d := supportQueueData{Items: q.Items, Status: r.URL.Query().Get("status"), CanWrite: identity.HasRole(a.P.Account, identity.RoleSupport),
		Form: form}
	if d.Form == nil {
		d.Form = map[string]string{}
	}
	if q.Next != "" {
		next := url.Values{"after": {q.Next}}
		for _, k := range []string{"status", "assignee", "limit"} {
			if v := r.URL.Query().Get(k); v != "" {
				next.Set(k, v)
			}
		}
		d.Next = "/admin/support?" + next.Encode()
	}
	v := s.newView("Support desk", &a)
	v.Errors = formErrors(errs, "email", "title", "notes")
	v.Notice = supportNotice(r.URL.Query().Get("done"))
	v.Data = d
	return s.render(w, r, status, "admin_support", v)
}

func (s *server) pageSupportQueue() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderSupportQueue(w, r, a, http.StatusOK, nil, nil)
	}
}

func (s *server) pageSupportPhonePost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		form := map[string]string{"email": r.PostForm.Get("email"), "title": r.PostForm.Get("title"), "notes": r.PostForm.Get("notes")}
		id, err := s.d.Support.OpenByPhone(r.Context(), supportStaff(a), form["email"], form["title"], form["notes"])
		if err != nil {
			return redraw(renameField(err, phoneFields), func(status int, errs map[string]string) error {
				return s.renderSupportQueue(w, r, a, status, errs, form)
			})
		}
		http.Redirect(w, r, "/admin/support/"+url.PathEscape(id)+"?done=phone", http.StatusSeeOther)
		return nil
	}
}

type staffThreadData struct {
	Thread support.Thread
	// Person is the requester's name and address, read only for the
	// support role: a quality reviewer's purpose does not reach them.
	Person   *support.Person
	CanWrite bool
	Me       string
	Form     map[string]string
}

func (s *server) renderStaffThread(w http.ResponseWriter, r *http.Request, a auth, id string, status int, errs, form map[string]string) error {
	st := supportStaff(a)
	t, err := s.d.Support.StaffThread(r.Context(), st, id)
	if err != nil {
		return err
	}
	d := staffThreadData{Thread: t, CanWrite: identity.HasRole(a.P.Account, identity.RoleSupport), Me: a.P.Account.SubjectID, Form: form}
	if d.Form == nil {
		d.Form = map[string]string{}
	}
	if a.P.Account.Role == identity.RoleSupport {
		p, err := s.d.Support.Requester(r.Context(), st, id)
		switch {
		case err == nil:
			d.Person = &p
		case !fault.Is(err, fault.PurposeDenied):
			return err
		}
	}
	v := s.newView("Support request", &a)
	v.Errors = formErrors(errs, "text", "files", "notes", "notice_given_at", "recording")
	v.Notice = supportNotice(r.URL.Query().Get("done"))
	v.Data = d
	return s.render(w, r, status, "admin_support_thread", v)
}

func (s *server) pageStaffSupportThread() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderStaffThread(w, r, a, r.PathValue("id"), http.StatusOK, nil, nil)
	}
}

// staffThreadPost runs a staff form on a request and sends the browser
// back to the request.
func (s *server) staffThreadPost(w http.ResponseWriter, r *http.Request, a auth, done string, form map[string]string, act func() error) error {
	if err := act(); err != nil {
		return s.redrawStaffThread(w, r, a, err, form)
	}
	http.Redirect(w, r, "/admin/support/"+url.PathEscape(r.PathValue("id"))+"?done="+done, http.StatusSeeOther)
	return nil
}

// redrawStaffThread draws the request again with a form's refusal beside
// its field.
func (s *server) redrawStaffThread(w http.ResponseWriter, r *http.Request, a auth, err error, form map[string]string) error {
	return redraw(err, func(status int, errs map[string]string) error {
		return s.renderStaffThread(w, r, a, r.PathValue("id"), status, errs, form)
	})
}

func (s *server) pageSupportAnswerPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.readSupportForm(w, r, "files", false, "text")
		if err != nil {
			return s.redrawStaffThread(w, r, a, err, nil)
		}
		defer f.close()
		return s.staffThreadPost(w, r, a, "answered", f.values, func() error {
			_, err := s.d.Support.Answer(r.Context(), supportStaff(a), r.PathValue("id"), f.get("text"), f.files)
			return err
		})
	}
}

func (s *server) pageSupportRecordingPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.readSupportForm(w, r, "recording", true, "notes", "notice_given_at")
		if err != nil {
			return s.redrawStaffThread(w, r, a, err, nil)
		}
		defer f.close()
		return s.staffThreadPost(w, r, a, "recorded", f.values, func() error {
			rec, err := recordingFrom(f)
			if err != nil {
				return err
			}
			_, err = s.d.Support.AddRecording(r.Context(), supportStaff(a), r.PathValue("id"), rec)
			return err
		})
	}
}

func (s *server) pageSupportStatusPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		return s.staffThreadPost(w, r, a, "status", nil, func() error {
			return s.d.Support.SetStatus(r.Context(), supportStaff(a), r.PathValue("id"), r.PostForm.Get("status"))
		})
	}
}

// pageSupportAssignPost gives a request to the staff member pressing the
// button ("me"), or to nobody.
func (s *server) pageSupportAssignPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		to := strings.TrimSpace(r.PostForm.Get("assignee"))
		if to == "me" {
			to = a.P.Account.SubjectID
		}
		return s.staffThreadPost(w, r, a, "assigned", nil, func() error {
			return s.d.Support.Assign(r.Context(), supportStaff(a), r.PathValue("id"), to)
		})
	}
}

func (s *server) pageStaffSupportFile() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		st := supportStaff(a)
		return s.sendSupportFile(w, r, support.Reader{Staff: &st})
	}
}
