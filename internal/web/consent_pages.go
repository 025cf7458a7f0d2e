package web

import (
	"net/http"
	"strconv"
	"strings"

	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/newsletter"
	"steward/internal/notice"
)

// The member's consent page (/account/consents): every purpose they may
// decide on with one button to give or withdraw, their newsletters, the
// policy changes waiting for their acceptance, and their receipts. The
// privacy centre links here. And the staff page for newsletters and
// notices (/admin/newsletters).

type consentPageData struct {
	Consents    []consent.Choice
	Records     []consent.Record
	GPC         gpcStatus
	Lists       []listJSON
	Subs        map[string]newsletter.Subscription
	Pending     []notice.PendingChange
	Version     int
	ReceiptKey  string
	HasNotices  bool
	HasLetters  bool
	RecordCount int
}

func (s *server) renderConsents(w http.ResponseWriter, r *http.Request, a auth, status int, notice string, errs map[string]string) {
	ctx := r.Context()
	body, err := s.consentsOf(ctx, r, a.P.Account.SubjectID)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	d := consentPageData{Consents: body.Consents, Records: body.Records, GPC: body.GPC, Pending: body.PendingPolicyChanges,
		Version: s.d.PolicyVersion, ReceiptKey: body.ReceiptKey, HasNotices: s.d.Notices != nil, Subs: map[string]newsletter.Subscription{},
		RecordCount: len(body.Records)}
	if s.d.Newsletters != nil {
		d.HasLetters = true
		ls, err := s.d.Newsletters.Lists(ctx, s.d.DB, true)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		d.Lists = listsJSON(ls)
		subs, err := s.d.Newsletters.Subscriptions(ctx, s.d.DB, a.P.Account.SubjectID)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		for _, sub := range subs {
			d.Subs[sub.ListID] = sub
		}
	}
	v := s.newView("Your consents", &a)
	v.Notice = notice
	if errs != nil {
		v.Errors = errs
	}
	v.Data = d
	s.render(w, r, status, "consent_centre", v)
}

var consentNotices = map[string]string{
	"consent":    "Your choice is saved. Its receipt is listed below.",
	"newsletter": "Your newsletter choice is saved.",
	"accepted":   "Thank you: you accepted the current version of the policy.",
}

func (s *server) pageConsents() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		s.applyGPC(r, a.P.Account.SubjectID)
		s.renderConsents(w, r, a, http.StatusOK, consentNotices[r.URL.Query().Get("done")], nil)
	}
}

func (s *server) pageConsentPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		s.applyGPC(r, a.P.Account.SubjectID)
		_, err := s.d.Consent.Change(r.Context(), consent.Change{SubjectID: a.P.Account.SubjectID, Purpose: r.PathValue("purpose"),
			State: consent.State(r.PostForm.Get("state")), Method: consent.MethodForm, CollectionPoint: "/account/consents", Evidence: evidenceOf(r)})
		if err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				s.renderConsents(w, r, a, status, "", errs)
			})
			return
		}
		http.Redirect(w, r, "/account/consents?done=consent", http.StatusSeeOther)
	}
}

func (s *server) pageNewsletterPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
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
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				s.renderConsents(w, r, a, status, "", errs)
			})
			return
		}
		http.Redirect(w, r, "/account/consents?done=newsletter", http.StatusSeeOther)
	}
}

func (s *server) pageAcceptPolicyPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		n, _ := strconv.Atoi(r.PostForm.Get("version"))
		if err := s.d.Notices.Accept(r.Context(), a.P.Account.SubjectID, n, consent.MethodForm, evidenceOf(r)); err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				s.renderConsents(w, r, a, status, "", errs)
			})
			return
		}
		http.Redirect(w, r, "/account/consents?done=accepted", http.StatusSeeOther)
	}
}

// pageReceipt downloads one of the member's signed receipts.
func (s *server) pageReceipt() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		rec, err := s.d.Consent.Get(r.Context(), s.d.DB, a.P.Account.SubjectID, r.PathValue("id"))
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="consent-receipt-`+rec.ID+`.json"`)
		w.Write(rec.Receipt)
	}
}

// Staff page.

type newsletterAdminData struct {
	Lists        []newsletter.List
	Campaigns    map[string][]newsletter.Campaign
	Notices      []notice.Notice
	CanSend      bool // admin: campaigns
	CanBroadcast bool // admin, privacy: notices
	CanUnsub     bool // admin, support: unsubscribe on request
}

func (s *server) renderNewsletterAdmin(w http.ResponseWriter, r *http.Request, a auth, status int, msg string, errs map[string]string) {
	ctx := r.Context()
	d := newsletterAdminData{Campaigns: map[string][]newsletter.Campaign{},
		CanSend:      identity.HasRole(a.P.Account, "admin"),
		CanBroadcast: identity.HasRole(a.P.Account, "admin", "privacy") && s.d.Notices != nil,
		CanUnsub:     identity.HasRole(a.P.Account, "admin", "support")}
	var err error
	if d.Lists, err = s.d.Newsletters.Lists(ctx, s.d.DB, false); err != nil {
		s.errorPage(w, r, err)
		return
	}
	for _, l := range d.Lists {
		if d.Campaigns[l.ID], err = s.d.Newsletters.Campaigns(ctx, s.d.DB, l.ID); err != nil {
			s.errorPage(w, r, err)
			return
		}
	}
	if s.d.Notices != nil {
		if d.Notices, err = s.d.Notices.List(ctx, s.d.DB); err != nil {
			s.errorPage(w, r, err)
			return
		}
	}
	v := s.newView("Newsletters and notices", &a)
	v.Notice = msg
	if errs != nil {
		v.Errors = errs
	}
	v.Data = d
	s.render(w, r, status, "newsletter_admin", v)
}

var adminNotices = map[string]string{
	"campaign":    "The campaign is queued; each recipient is checked against the policy when their batch is sent.",
	"unsubscribe": msgStaffUnsubscribe,
	"notice":      "The notice is queued to everyone Steward holds an address for; each send is recorded.",
}

func (s *server) pageNewsletterAdmin() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		s.renderNewsletterAdmin(w, r, a, http.StatusOK, adminNotices[r.URL.Query().Get("done")], nil)
	}
}

func (s *server) pageCampaignPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		_, err := s.d.Newsletters.CreateCampaign(r.Context(), a.P.Account.SubjectID, r.PathValue("list"), newsletter.CampaignInput{
			Subject: r.PostForm.Get("subject"), Text: normalizeNewlines(r.PostForm.Get("text")), HTML: normalizeNewlines(r.PostForm.Get("html"))})
		if err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				s.renderNewsletterAdmin(w, r, a, status, "", errs)
			})
			return
		}
		http.Redirect(w, r, "/admin/newsletters?done=campaign", http.StatusSeeOther)
	}
}

// normalizeNewlines turns the CRLF of browser textareas into LF.
func normalizeNewlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func (s *server) pageStaffUnsubscribePost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		if err := s.d.Newsletters.StaffUnsubscribe(r.Context(), a.P.Account.SubjectID, r.PostForm.Get("email"), r.PostForm.Get("list")); err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				s.renderNewsletterAdmin(w, r, a, status, "", errs)
			})
			return
		}
		http.Redirect(w, r, "/admin/newsletters?done=unsubscribe", http.StatusSeeOther)
	}
}

func (s *server) pageBroadcastPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		_, err := s.d.Notices.Broadcast(r.Context(), a.P.Account.SubjectID, notice.BroadcastInput{Kind: notice.Kind(r.PostForm.Get("kind")),
			Subject: r.PostForm.Get("subject"), Text: normalizeNewlines(r.PostForm.Get("text"))})
		if err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				s.renderNewsletterAdmin(w, r, a, status, "", errs)
			})
			return
		}
		http.Redirect(w, r, "/admin/newsletters?done=notice", http.StatusSeeOther)
	}
}
