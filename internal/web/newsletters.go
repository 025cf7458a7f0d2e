package web

// Newsletters over the API: the public list of lists and subscribing by
// email, the member's own subscriptions, and the staff's lists, campaigns
// and unsubscribe-on-request.

import (
	"net/http"
	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/newsletter"
	"strings"
)

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

func (s *server) handleNewsletters() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		ls, err := s.d.Newsletters.Lists(r.Context(), true)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"newsletters": listsJSON(ls)})
	}
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
func (s *server) handleSubscribe() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in subscribeRequest
		if err := decode(r, &in); err != nil {
			return err
		}
		sub := newsletter.SubscribeInput{List: r.PathValue("list"), Email: in.Email, SourcePage: in.SourcePage,
			Tracking: in.Tracking, Method: consent.MethodAPI, Evidence: evidenceOf(r)}
		if in.Email == "" {
			a := s.optionalAuth(r)
			if a == nil {
				return fault.FieldError("email", "an email address is required")
			}
			sub.SubjectID, sub.Verified = a.P.Account.SubjectID, a.P.Account.EmailVerified
		}
		if _, err := s.d.Newsletters.Subscribe(r.Context(), sub); err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, accepted(msgSubscribe))
	}
}

type myNewslettersBody struct {
	Lists         []listJSON                `json:"lists"`
	Subscriptions []newsletter.Subscription `json:"subscriptions"`
}

func (s *server) handleMyNewsletters() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		ls, err := s.d.Newsletters.Lists(r.Context(), true)
		if err != nil {
			return err
		}
		subs, err := s.d.Newsletters.Subscriptions(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, myNewslettersBody{Lists: listsJSON(ls), Subscriptions: subs})
	}
}

type memberSubscribe struct {
	Tracking bool `json:"tracking"`
}

func (s *server) handleMySubscribe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in memberSubscribe
		if err := decode(r, &in); err != nil {
			return err
		}
		res, err := s.d.Newsletters.Subscribe(r.Context(), newsletter.SubscribeInput{List: r.PathValue("list"),
			SubjectID: a.P.Account.SubjectID, Verified: a.P.Account.EmailVerified, Tracking: in.Tracking,
			Method: consent.MethodAPI, SourcePage: "PUT /api/v1/me/newsletters", Evidence: evidenceOf(r)})
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, res)
	}
}

func (s *server) handleMyUnsubscribe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.d.Newsletters.MemberUnsubscribe(r.Context(), a.P.Account.SubjectID, r.PathValue("list"), consent.MethodAPI, evidenceOf(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *server) handleCreateList() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in newsletter.ListInput
		if err := decode(r, &in); err != nil {
			return err
		}
		l, err := s.d.Newsletters.CreateList(r.Context(), a.P.Account.SubjectID, in)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, listsJSON([]newsletter.List{l})[0])
	}
}

func (s *server) handleCampaigns() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if _, err := s.d.Newsletters.GetList(r.Context(), r.PathValue("list")); err != nil {
			return err
		}
		cs, err := s.d.Newsletters.Campaigns(r.Context(), r.PathValue("list"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"campaigns": cs})
	}
}

func (s *server) handleSendCampaign() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in newsletter.CampaignInput
		if err := decode(r, &in); err != nil {
			return err
		}
		c, err := s.d.Newsletters.CreateCampaign(r.Context(), a.P.Account.SubjectID, r.PathValue("list"), in)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, c)
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
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in staffUnsubscribe
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Newsletters.StaffUnsubscribe(r.Context(), a.P.Account.SubjectID, in.Email, strings.TrimSpace(in.List)); err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, accepted(msgStaffUnsubscribe))
	}
}
