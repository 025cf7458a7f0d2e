package web

// Newsletter pages: the confirmation page (a GET shows a button, only the
// POST confirms, so mail scanners confirm nothing), RFC 8058 one-click
// unsubscribe (no login, no CSRF token: the signed token authorises it,
// and the route is exempt from cross-origin protection), the preferences
// page, the tracking endpoints, the member's subscribe buttons on the
// consent page, and the staff page for newsletters and notices
// (/admin/newsletters).

import (
	"mime"
	"net/http"
	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/newsletter"
	"steward/internal/notice"
	"strings"
)

type confirmData struct {
	Token    string
	ListName string
}

// pageConfirm shows the confirmation page; it changes nothing.
func (s *server) pageConfirm() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok := r.URL.Query().Get("token")
		p, err := s.d.Newsletters.CheckConfirmation(r.Context(), tok)
		if err != nil {
			return err
		}
		v := s.newView("Confirm your subscription", nil)
		v.Data = confirmData{Token: tok, ListName: p.ListName}
		return s.render(w, r, http.StatusOK, "newsletter_confirm", v)
	}
}

func (s *server) pageConfirmPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		tok := r.PostForm.Get("token")
		if tok == "" {
			tok = r.URL.Query().Get("token")
		}
		if err := s.d.Newsletters.Confirm(r.Context(), tok, evidenceOf(r)); err != nil {
			return err
		}
		return s.message(w, r, http.StatusOK, "Subscription confirmed",
			"Thank you: you are subscribed. Every mail has a link that unsubscribes you in one click.", nil)
	}
}

// unsubscribeToken reads the token of an unsubscribe POST: from the URL
// (RFC 8058 posts to the List-Unsubscribe URL itself) or from the form of
// the unsubscribe page. RFC 8058 bodies come as multipart/form-data or
// application/x-www-form-urlencoded.
func unsubscribeToken(r *http.Request) (string, error) {
	if tok := r.URL.Query().Get("token"); tok != "" {
		return tok, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		if err := r.ParseMultipartForm(64 << 10); err != nil {
			return "", badRequest("", "the form could not be read", err)
		}
		return r.PostFormValue("token"), nil
	}
	if err := parseForm(r); err != nil {
		return "", err
	}
	return r.PostForm.Get("token"), nil
}

type unsubscribeData struct {
	Token string
}

// pageUnsubscribe is what a person who opens the List-Unsubscribe link in
// a browser sees: one button that does what the one-click POST does. The
// GET itself changes nothing (mail scanners open links).
func (s *server) pageUnsubscribe() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := s.newView("Unsubscribe", nil)
		v.Data = unsubscribeData{Token: r.URL.Query().Get("token")}
		return s.render(w, r, http.StatusOK, "newsletter_unsubscribe", v)
	}
}

// handleUnsubscribePost is the one-click unsubscribe (RFC 8058) and the
// button of the unsubscribe page. It needs no login and no CSRF token, is
// idempotent, and answers the same whether or not there was a
// subscription to end.
func (s *server) handleUnsubscribePost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, err := unsubscribeToken(r)
		if err == nil {
			err = s.d.Newsletters.Unsubscribe(r.Context(), tok, evidenceOf(r))
		}
		if err != nil {
			return err
		}
		if wantsHTML(r) {
			return s.message(w, r, http.StatusOK, "You are unsubscribed", "You will get no more mail from this list.", nil)
		}
		return s.encode(w, http.StatusOK, map[string]string{"status": "unsubscribed"})
	}
}

type preferencesData struct {
	Token string
	Items []newsletter.PreferenceItem
	Saved bool
}

func (s *server) pagePreferences() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok := r.URL.Query().Get("token")
		p, err := s.d.Newsletters.PreferencesFor(r.Context(), tok)
		if err != nil {
			return err
		}
		v := s.newView("Your newsletters", nil)
		v.Data = preferencesData{Token: tok, Items: p.Items}
		return s.render(w, r, http.StatusOK, "newsletter_preferences", v)
	}
}

func (s *server) pagePreferencesPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		tok := r.PostForm.Get("token")
		cur, err := s.d.Newsletters.PreferencesFor(r.Context(), tok)
		if err != nil {
			return err
		}
		// Every list shown is in the form: a checkbox left unticked means
		// "not subscribed".
		var changes []newsletter.PreferenceChange
		for _, it := range cur.Items {
			changes = append(changes, newsletter.PreferenceChange{List: it.List.ID,
				Subscribed: r.PostForm.Get("list."+it.List.ID) == "on",
				Tracking:   r.PostForm.Get("tracking."+it.List.ID) == "on"})
		}
		p, err := s.d.Newsletters.UpdatePreferences(r.Context(), tok, changes, evidenceOf(r))
		if err != nil {
			return err
		}
		v := s.newView("Your newsletters", nil)
		v.Notice = "Your choices are saved."
		v.Data = preferencesData{Token: tok, Items: p.Items, Saved: true}
		return s.render(w, r, http.StatusOK, "newsletter_preferences", v)
	}
}

// pixel is a transparent 1×1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// handleTrackOpen records an open where the policy and the recipient
// allow it, and always answers with the same pixel.
func (s *server) handleTrackOpen() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.d.Newsletters != nil {
			if _, err := s.d.Newsletters.Track(r.Context(), r.URL.Query().Get("token"), ""); err != nil && fault.CodeOf(err) == fault.Internal {
				s.log.Error("web: track open", "request_id", infoOf(r).id, "error", err.Error())
			}
		}
		w.Header().Set("Content-Type", "image/gif")
		w.Write(pixel)
		return nil
	}
}

// handleTrackClick records a click and redirects to the link the token was
// made for, and nowhere else.
func (s *server) handleTrackClick() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		target, err := s.d.Newsletters.Track(r.Context(), r.URL.Query().Get("token"), r.URL.Query().Get("url"))
		if err != nil {
			return err
		}
		http.Redirect(w, r, target, http.StatusFound)
		return nil
	}
}

func (s *server) pageNewsletterPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		list := r.PathValue("list")
		var err error
		switch r.PostForm.Get("action") {
		case "subscribe":
			_, err = s.d.Newsletters.Subscribe(r.Context(), newsletter.SubscribeInput{List: list, SubjectID: a.P.Account.SubjectID,
				Verified: a.P.Account.EmailVerified, Tracking: r.PostForm.Get("tracking") == "on", Method: consent.MethodForm,
				SourcePage: "/account/consents", Evidence: evidenceOf(r)})
		case "unsubscribe":
			err = s.d.Newsletters.MemberUnsubscribe(r.Context(), a.P.Account.SubjectID, list, consent.MethodForm, evidenceOf(r))
		default:
			err = fault.FieldError("action", "choose subscribe or unsubscribe")
		}
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderConsents(w, r, a, status, "", errs)
			})
		}
		http.Redirect(w, r, "/account/consents?done=newsletter", http.StatusSeeOther)
		return nil
	}
}

type newsletterAdminData struct {
	Lists        []newsletter.List
	Campaigns    map[string][]newsletter.Campaign
	Notices      []notice.Notice
	CanSend      bool // admin: campaigns
	CanBroadcast bool // admin, privacy: notices
	CanUnsub     bool // admin, support: unsubscribe on request
}

func (s *server) renderNewsletterAdmin(w http.ResponseWriter, r *http.Request, a auth, status int, msg string, errs map[string]string) error {
	ctx := r.Context()
	d := newsletterAdminData{Campaigns: map[string][]newsletter.Campaign{},
		CanSend:      identity.HasRole(a.P.Account, "admin"),
		CanBroadcast: identity.HasRole(a.P.Account, "admin", "privacy"),
		CanUnsub:     identity.HasRole(a.P.Account, "admin", "support")}
	var err error
	if d.Lists, err = s.d.Newsletters.Lists(ctx, false); err != nil {
		return err
	}
	for _, l := range d.Lists {
		if d.Campaigns[l.ID], err = s.d.Newsletters.Campaigns(ctx, l.ID); err != nil {
			return err
		}
	}
	if d.Notices, err = s.d.Notices.List(ctx); err != nil {
		return err
	}
	v := s.newView("Newsletters and notices", &a)
	v.Notice = msg
	if errs != nil {
		v.Errors = errs
	}
	v.Data = d
	return s.render(w, r, status, "newsletter_admin", v)
}

var adminNotices = map[string]string{
	"campaign":    "The campaign is queued; each recipient is checked against the policy when their batch is sent.",
	"unsubscribe": msgStaffUnsubscribe,
	"notice":      "The notice is queued to everyone Steward holds an address for; each send is recorded.",
}

func (s *server) pageNewsletterAdmin() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderNewsletterAdmin(w, r, a, http.StatusOK, adminNotices[r.URL.Query().Get("done")], nil)
	}
}

func (s *server) pageCampaignPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		_, err := s.d.Newsletters.CreateCampaign(r.Context(), a.P.Account.SubjectID, r.PathValue("list"), newsletter.CampaignInput{
			Subject: r.PostForm.Get("subject"), Text: normalizeNewlines(r.PostForm.Get("text")), HTML: normalizeNewlines(r.PostForm.Get("html"))})
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderNewsletterAdmin(w, r, a, status, "", errs)
			})
		}
		http.Redirect(w, r, "/admin/newsletters?done=campaign", http.StatusSeeOther)
		return nil
	}
}

// normalizeNewlines turns the CRLF of browser textareas into LF.
func normalizeNewlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func (s *server) pageStaffUnsubscribePost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		if err := s.d.Newsletters.StaffUnsubscribe(r.Context(), a.P.Account.SubjectID, r.PostForm.Get("email"), r.PostForm.Get("list")); err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderNewsletterAdmin(w, r, a, status, "", errs)
			})
		}
		http.Redirect(w, r, "/admin/newsletters?done=unsubscribe", http.StatusSeeOther)
		return nil
	}
}
