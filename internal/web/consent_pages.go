package web

import (
	"net/http"
	"strconv"

	"steward/internal/consent"
	"steward/internal/newsletter"
	"steward/internal/notice"
)

// The member's consent page (/account/consents): every purpose they may
// decide on with one button to give or withdraw, their newsletters, the
// policy changes waiting for their acceptance, and their receipts. The
// privacy centre links here.

type consentPageData struct {
	Consents    []consent.Choice
	Records     []consent.Record
	GPC         gpcStatus
	Lists       []listJSON
	Subs        map[string]newsletter.Subscription
	Pending     []notice.PendingChange
	Version     int
	ReceiptKey  string
	RecordCount int
}

func (s *server) renderConsents(w http.ResponseWriter, r *http.Request, a auth, status int, notice string, errs map[string]string) error {
	ctx := r.Context()
	body, err := s.consentsOf(ctx, r, a.P.Account.SubjectID)
	if err != nil {
		return err
	}
	d := consentPageData{Consents: body.Consents, Records: body.Records, GPC: body.GPC, Pending: body.PendingPolicyChanges,
		Version: s.d.Policy.Number(), ReceiptKey: body.ReceiptKey, Subs: map[string]newsletter.Subscription{},
		RecordCount: len(body.Records)}
	ls, err := s.d.Newsletters.Lists(ctx, true)
	if err != nil {
		return err
	}
	d.Lists = listsJSON(ls)
	subs, err := s.d.Newsletters.Subscriptions(ctx, a.P.Account.SubjectID)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		d.Subs[sub.ListID] = sub
	}
	v := s.newView("Your consents", &a)
	v.Notice = notice
	if errs != nil {
		v.Errors = errs
	}
	v.Data = d
	return s.render(w, r, status, "consent_centre", v)
}

var consentNotices = map[string]string{
	"consent":    "Your choice is saved. Its receipt is listed below.",
	"newsletter": "Your newsletter choice is saved.",
	"accepted":   "Thank you: you accepted the current version of the policy.",
}

func (s *server) pageConsents() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		s.applyGPC(r, a.P.Account.SubjectID)
		return s.renderConsents(w, r, a, http.StatusOK, consentNotices[r.URL.Query().Get("done")], nil)
	}
}

func (s *server) pageConsentPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		s.applyGPC(r, a.P.Account.SubjectID)
		_, err := s.d.Consent.Change(r.Context(), consent.Change{SubjectID: a.P.Account.SubjectID, Purpose: r.PathValue("purpose"),
			State: consent.State(r.PostForm.Get("state")), Method: consent.MethodForm, CollectionPoint: "/account/consents", Evidence: evidenceOf(r)})
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderConsents(w, r, a, status, "", errs)
			})
		}
		http.Redirect(w, r, "/account/consents?done=consent", http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageAcceptPolicyPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		n, _ := strconv.Atoi(r.PostForm.Get("version"))
		if err := s.d.Notices.Accept(r.Context(), a.P.Account.SubjectID, n, consent.MethodForm, evidenceOf(r)); err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderConsents(w, r, a, status, "", errs)
			})
		}
		http.Redirect(w, r, "/account/consents?done=accepted", http.StatusSeeOther)
		return nil
	}
}

// pageReceipt downloads one of the member's signed receipts.
func (s *server) pageReceipt() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		rec, err := s.d.Consent.Get(r.Context(), a.P.Account.SubjectID, r.PathValue("id"))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="consent-receipt-`+rec.ID+`.json"`)
		w.Write(rec.Receipt)
		return nil
	}
}

// Staff page.
