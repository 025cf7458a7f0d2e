package web

import (
	"mime"
	"net/http"
	"strings"

	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/newsletter"
)

// This file serves newsletters: the public list of lists, subscribing,
// the confirmation page (a GET shows a button, only the POST confirms, so
// mail scanners confirm nothing), RFC 8058 one-click unsubscribe (no login,
// no CSRF token: the signed token authorises it, and the route is exempt
// from cross-origin protection), the preferences page, tracking endpoints,
// and the staff's campaign and unsubscribe-on-request endpoints.

type listJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Purpose     string `json:"purpose"`
	DoubleOptIn bool   `json:"double_opt_in"`
	Tracking    bool   `json:"tracking_offered"`
}

func listsJSON(ls []newsletter.List) []listJSON {
	out := make([]listJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, listJSON{ID: l.ID, Name: l.Name, Description: l.Description, Purpose: l.Purpose, DoubleOptIn: l.DoubleOptIn, Tracking: l.Tracks()})
	}
	return out
}

func (s *server) handleNewsletters() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls, err := s.d.Newsletters.Lists(r.Context(), s.d.DB, true)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, map[string]any{"newsletters": listsJSON(ls)})
	})
}

type subscribeRequest struct {
	Email      string `json:"email"`
	SourcePage string `json:"source_page"`
	Tracking   bool   `json:"tracking"`
}

const msgSubscribe = "If this address can receive the newsletter, a message is on its way to it; follow the link in it to confirm."

// handleSubscribe subscribes by email alone; a signed-in member who sends
// no email subscribes their own (verified) address. The answer is the same
// 202 for every address, so it tells nothing about who is subscribed.
func (s *server) handleSubscribe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in subscribeRequest
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		sub := newsletter.SubscribeInput{List: r.PathValue("list"), Email: in.Email, SourcePage: in.SourcePage,
			Tracking: in.Tracking, Method: consent.MethodAPI, Evidence: evidenceOf(r)}
		if in.Email == "" {
			a := s.optionalAuth(r)
			if a == nil {
				s.problemJSON(w, r, fault.FieldError("email", "an email address is required"))
				return
			}
			sub.SubjectID, sub.Verified = a.P.Account.SubjectID, a.P.Account.EmailVerified
		}
		if _, err := s.d.Newsletters.Subscribe(r.Context(), sub); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusAccepted, accepted(msgSubscribe))
	})
}

type confirmData struct {
	Token    string
	ListName string
}

// pageConfirm shows the confirmation page; it changes nothing.
func (s *server) pageConfirm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		p, err := s.d.Newsletters.CheckConfirmation(r.Context(), tok)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		v := s.newView("Confirm your subscription", nil)
		v.Data = confirmData{Token: tok, ListName: p.ListName}
		s.render(w, r, http.StatusOK, "newsletter_confirm", v)
	})
}

func (s *server) pageConfirmPost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		tok := r.PostForm.Get("token")
		if tok == "" {
			tok = r.URL.Query().Get("token")
		}
		if err := s.d.Newsletters.Confirm(r.Context(), tok, evidenceOf(r)); err != nil {
			s.errorPage(w, r, err)
			return
		}
		s.message(w, r, http.StatusOK, "Subscription confirmed",
			"Thank you: you are subscribed. Every mail has a link that unsubscribes you in one click.", nil)
	})
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
func (s *server) pageUnsubscribe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.newView("Unsubscribe", nil)
		v.Data = unsubscribeData{Token: r.URL.Query().Get("token")}
		s.render(w, r, http.StatusOK, "newsletter_unsubscribe", v)
	})
}

// handleUnsubscribePost is the one-click unsubscribe (RFC 8058) and the
// button of the unsubscribe page. It needs no login and no CSRF token, is
// idempotent, and answers the same whether or not there was a
// subscription to end.
func (s *server) handleUnsubscribePost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := unsubscribeToken(r)
		if err == nil {
			err = s.d.Newsletters.Unsubscribe(r.Context(), tok, evidenceOf(r))
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if wantsHTML(r) {
			s.message(w, r, http.StatusOK, "You are unsubscribed", "You will get no more mail from this list.", nil)
			return
		}
		s.encode(w, r, http.StatusOK, map[string]string{"status": "unsubscribed"})
	})
}

type preferencesData struct {
	Token string
	Items []newsletter.PreferenceItem
	Saved bool
}

func (s *server) pagePreferences() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		p, err := s.d.Newsletters.PreferencesFor(r.Context(), tok)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		v := s.newView("Your newsletters", nil)
		v.Data = preferencesData{Token: tok, Items: p.Items}
		s.render(w, r, http.StatusOK, "newsletter_preferences", v)
	})
}

func (s *server) pagePreferencesPost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		tok := r.PostForm.Get("token")
		cur, err := s.d.Newsletters.PreferencesFor(r.Context(), tok)
		if err != nil {
			s.errorPage(w, r, err)
			return
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
			s.errorPage(w, r, err)
			return
		}
		v := s.newView("Your newsletters", nil)
		v.Notice = "Your choices are saved."
		v.Data = preferencesData{Token: tok, Items: p.Items, Saved: true}
		s.render(w, r, http.StatusOK, "newsletter_preferences", v)
	})
}

// pixel is a transparent 1×1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// handleTrackOpen records an open where the policy and the recipient
// allow it, and always answers with the same pixel.
func (s *server) handleTrackOpen() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.Newsletters != nil {
			if _, err := s.d.Newsletters.Track(r.Context(), r.URL.Query().Get("token"), ""); err != nil && fault.CodeOf(err) == fault.Internal {
				s.log.Error("web: track open", "request_id", infoOf(r).id, "error", err.Error())
			}
		}
		w.Header().Set("Content-Type", "image/gif")
		w.Write(pixel)
	})
}

// handleTrackClick records a click and redirects to the link the token was
// made for, and nowhere else.
func (s *server) handleTrackClick() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target, err := s.d.Newsletters.Track(r.Context(), r.URL.Query().Get("token"), r.URL.Query().Get("url"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, target, http.StatusFound)
	})
}

// Member endpoints.

type myNewslettersBody struct {
	Lists         []listJSON                `json:"lists"`
	Subscriptions []newsletter.Subscription `json:"subscriptions"`
}

func (s *server) handleMyNewsletters() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		ls, err := s.d.Newsletters.Lists(r.Context(), s.d.DB, true)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		subs, err := s.d.Newsletters.Subscriptions(r.Context(), s.d.DB, a.P.Account.SubjectID)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, myNewslettersBody{Lists: listsJSON(ls), Subscriptions: subs})
	}
}

type memberSubscribe struct {
	Tracking bool `json:"tracking"`
}

func (s *server) handleMySubscribe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		var in memberSubscribe
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		res, err := s.d.Newsletters.Subscribe(r.Context(), newsletter.SubscribeInput{List: r.PathValue("list"),
			SubjectID: a.P.Account.SubjectID, Verified: a.P.Account.EmailVerified, Tracking: in.Tracking,
			Method: consent.MethodAPI, SourcePage: "PUT /api/v1/me/newsletters", Evidence: evidenceOf(r)})
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, res)
	}
}

func (s *server) handleMyUnsubscribe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := s.d.Newsletters.MemberUnsubscribe(r.Context(), a.P.Account.SubjectID, r.PathValue("list"), consent.MethodAPI, evidenceOf(r)); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// Staff endpoints.

func (s *server) handleCreateList() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		var in newsletter.ListInput
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		l, err := s.d.Newsletters.CreateList(r.Context(), a.P.Account.SubjectID, in)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusCreated, listsJSON([]newsletter.List{l})[0])
	}
}

func (s *server) handleCampaigns() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if _, err := s.d.Newsletters.GetList(r.Context(), s.d.DB, r.PathValue("list")); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		cs, err := s.d.Newsletters.Campaigns(r.Context(), s.d.DB, r.PathValue("list"))
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, map[string]any{"campaigns": cs})
	}
}

func (s *server) handleSendCampaign() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		var in newsletter.CampaignInput
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		c, err := s.d.Newsletters.CreateCampaign(r.Context(), a.P.Account.SubjectID, r.PathValue("list"), in)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusAccepted, c)
	}
}

type staffUnsubscribe struct {
	Email string `json:"email"`
	List  string `json:"list"`
}

const msgStaffUnsubscribe = "If this address was subscribed, it is unsubscribed."

// handleStaffUnsubscribe lets support staff unsubscribe someone who asked
// by mail or phone (promise M7). The answer does not say whether the
// address was subscribed.
func (s *server) handleStaffUnsubscribe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		var in staffUnsubscribe
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		if err := s.d.Newsletters.StaffUnsubscribe(r.Context(), a.P.Account.SubjectID, in.Email, strings.TrimSpace(in.List)); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusAccepted, accepted(msgStaffUnsubscribe))
	}
}
