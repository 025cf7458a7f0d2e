package newsletter

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// Status is where a subscription stands.
type Status string

const (
	Pending      Status = "pending"      // waiting for the confirmation click
	Confirmed    Status = "confirmed"    // receives campaigns (if the guard allows)
	Unsubscribed Status = "unsubscribed" // ended; kept as the record of the choice
)

// Subscription is one subject's relation to one list.
type Subscription struct {
	ID                string     `json:"id"`
	ListID            string     `json:"list_id"`
	SubjectID         string     `json:"-"`
	Status            Status     `json:"status"`
	Source            string     `json:"source"`
	SourcePage        string     `json:"source_page,omitempty"`
	PolicyVersion     int        `json:"policy_version"`
	ConsentRecordID   string     `json:"consent_record_id,omitempty"`
	Tracking          bool       `json:"tracking"`
	CreatedAt         time.Time  `json:"created_at"`
	ConfirmedAt       *time.Time `json:"confirmed_at,omitempty"`
	UnsubscribedAt    *time.Time `json:"unsubscribed_at,omitempty"`
	UnsubscribeMethod string     `json:"unsubscribe_method,omitempty"`

	confirmNonce  string
	confirmSentAt *time.Time
	confirmSends  int
	// sourcePage is SourcePage as stored, sealed with the subject's key:
	// only the reads that show or use it open it.
	sourcePage door.Sealed
}

const subColumns = `id, list_id, subject_id, status, source, source_page_sealed, policy_version, confirm_nonce, confirm_sent_at,
	confirm_sends, consent_record_id, tracking, created_at, confirmed_at, unsubscribed_at, unsubscribe_method`

func scanSub(row interface{ Scan(...any) error }) (Subscription, error) {
	var s Subscription
	var status string
	var sent, confirmed, unsub sql.NullTime
	err := row.Scan(&s.ID, &s.ListID, &s.SubjectID, &status, &s.Source, &s.sourcePage, &s.PolicyVersion, &s.confirmNonce,
		&sent, &s.confirmSends, &s.ConsentRecordID, &s.Tracking, &s.CreatedAt, &confirmed, &unsub, &s.UnsubscribeMethod)
	if err != nil {
		return Subscription{}, err
	}
	s.Status = Status(status)
	s.CreatedAt = s.CreatedAt.UTC()
	s.confirmSentAt = timePtr(sent)
	s.ConfirmedAt = timePtr(confirmed)
	s.UnsubscribedAt = timePtr(unsub)
	return s, nil
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func randomToken(prefix string) string {
	var b [13]byte
	rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.EncodeToString(b[:])[:20])
}

func (s *Service) subscription(ctx context.Context, q store.Q, listID, subjectID string) (Subscription, bool, error) {
	sub, err := scanSub(q.QueryRowContext(ctx, `SELECT `+subColumns+` FROM newsletter_subscriptions WHERE list_id = $1 AND subject_id = $2`, listID, subjectID))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, false, nil
	}
	if err != nil {
		return Subscription{}, false, fmt.Errorf("newsletter: subscription: %w", err)
	}
	return sub, true, nil
}

// SubscribeInput is a request to subscribe.
type SubscribeInput struct {
	List string
	// Email is the address of a person subscribing without an account.
	Email string
	// SubjectID is the signed-in member subscribing themselves; Email is
	// then ignored and their own address is used.
	SubjectID string
	// Verified says the member's address is verified, so no confirmation
	// mail is needed even on a double opt-in list.
	Verified bool
	// SourcePage is where the form was (a path or URL), kept as evidence.
	SourcePage string
	// Method is consent.MethodForm or consent.MethodAPI.
	Method   consent.Method
	Evidence consent.Evidence
	// Tracking is the person's opt-in to open/click tracking, honoured only
	// on lists where the policy allows tracking.
	Tracking bool
}

// Result says what happened, for signed-in members only: a person
// subscribing by email alone always gets the same answer, so the response
// never tells whether an address is subscribed.
type Result struct {
	Status Status `json:"status"`
}

// Subscribe subscribes a person to a list. On a double opt-in list a
// person subscribing by email gets a confirmation mail (at most one an
// hour per list, five while pending), and nothing changes until they
// confirm. fault.RateLimited when the client network sent too many.
func (s *Service) Subscribe(ctx context.Context, in SubscribeInput) (Result, error) {
	if err := mail.CheckText("source_page", in.SourcePage, 500, false); err != nil {
		return Result{}, err
	}
	if in.Method != consent.MethodForm && in.Method != consent.MethodAPI {
		in.Method = consent.MethodAPI
	}
	if in.SubjectID == "" {
		if _, err := subject.NormalizeEmail(in.Email); err != nil {
			return Result{}, err
		}
	}
	if ok, err := s.allow(ctx, in.Evidence.Network); err != nil {
		return Result{}, err
	} else if !ok {
		return Result{}, fault.New(fault.RateLimited, "too many subscription requests from your network; try again later")
	}
	var res Result
	sendConfirm := false
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		list, err := s.getList(ctx, tx, in.List)
		if err != nil {
			return err
		}
		if !list.Open {
			return fault.New(fault.NotFound, "no such newsletter")
		}
		var subj subject.Subject
		if in.SubjectID != "" {
			if subj, err = s.d.Subjects.Get(ctx, tx, in.SubjectID); err != nil {
				return err
			}
			if !subj.HasEmail {
				return fault.New(fault.Conflict, "your account has no email address to send the newsletter to")
			}
		} else {
			// The address is kept to answer the person's own request: the
			// confirmation link, then the newsletter once they confirm.
			if subj, _, err = s.d.Subjects.EnsureByEmail(ctx, tx, s.d.Door, door.Subject(), in.Email, "newsletter", s.d.Policy.Number()); err != nil {
				return err
			}
			if subj.MergedInto != "" || subj.Erased() {
				return nil // cannot happen for a live address; answer as usual
			}
		}
		cur, found, err := s.subscription(ctx, tx, list.ID, subj.ID)
		if err != nil {
			return err
		}
		now := s.d.Clock.Now()
		tracking := in.Tracking && list.Tracks()
		if found && cur.Status == Confirmed {
			res.Status = Confirmed
			return nil
		}
		direct := !list.DoubleOptIn || (in.SubjectID != "" && in.Verified)
		var page door.Sealed
		if !found || cur.Status == Unsubscribed {
			if page, err = s.sealPage(ctx, tx, subj.ID, in.SourcePage); err != nil {
				return err
			}
		}
		if !found {
			cur = Subscription{ID: randomToken("ns_"), ListID: list.ID, SubjectID: subj.ID, CreatedAt: now}
			ins, err := tx.ExecContext(ctx, `INSERT INTO newsletter_subscriptions (id, list_id, subject_id, status, source, source_page_sealed,
				policy_version, tracking, created_at, updated_at) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $8)
				ON CONFLICT (list_id, subject_id) DO NOTHING`,
				cur.ID, list.ID, subj.ID, string(in.Method), page, s.d.Policy.Number(), tracking, now)
			if err != nil {
				return fmt.Errorf("newsletter: subscribe: %w", err)
			}
			if n, err := ins.RowsAffected(); err != nil || n == 0 {
				// A concurrent request for the same person and list got
				// there first; it sends what needs sending.
				res.Status = Pending
				return err
			}
			cur.Status = Pending
		} else if cur.Status == Unsubscribed {
			// A new subscription after an unsubscription starts over: new
			// evidence, new confirmation.
			_, err := tx.ExecContext(ctx, `UPDATE newsletter_subscriptions SET status = 'pending', source = $2, source_page_sealed = $3,
				policy_version = $4, tracking = $5, confirm_nonce = '', confirm_sends = 0, confirm_sent_at = NULL,
				consent_record_id = '', confirmed_at = NULL, updated_at = $6 WHERE id = $1`,
				cur.ID, string(in.Method), page, s.d.Policy.Number(), tracking, now)
			if err != nil {
				return fmt.Errorf("newsletter: subscribe: %w", err)
			}
			cur.Status, cur.confirmSends, cur.confirmSentAt, cur.SourcePage = Pending, 0, nil, in.SourcePage
		}
		if direct {
			if err := s.confirm(ctx, tx, list, cur, in.Method, in.Evidence, sourceOr(in.SourcePage, "subscribe")); err != nil {
				return err
			}
			res.Status = Confirmed
			return nil
		}
		res.Status = Pending
		// Throttle confirmation mails per address and list: one an hour,
		// five in all while pending, so the form cannot mail-bomb someone.
		if cur.confirmSends >= 5 || (cur.confirmSentAt != nil && now.Sub(*cur.confirmSentAt) < time.Hour) {
			return nil
		}
		nonce := randomToken("")
		if _, err := tx.ExecContext(ctx, `UPDATE newsletter_subscriptions SET confirm_nonce = $2, confirm_sent_at = $3,
			confirm_sends = confirm_sends + 1, updated_at = $3 WHERE id = $1`, cur.ID, nonce, now); err != nil {
			return fmt.Errorf("newsletter: subscribe: %w", err)
		}
		if err := s.mailConfirmation(ctx, tx, list, subj, nonce); err != nil {
			return err
		}
		sendConfirm = true
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if sendConfirm {
		s.d.Jobs.Wake()
	}
	if in.SubjectID == "" {
		return Result{Status: Pending}, nil // the same answer for every address
	}
	return res, nil
}

// sealPage seals the page a subscription form was on, as part of the
// person's own request to subscribe. When the person erased their
// newsletter data before (the key is destroyed), the page is not kept:
// the subscription itself still is, at their new request.
func (s *Service) sealPage(ctx context.Context, q store.Q, subjectID, page string) (door.Sealed, error) {
	if page == "" {
		return door.Sealed{}, nil
	}
	v, err := s.d.Door.Subject(ctx, q, door.Subject(), subjectID)
	if err != nil {
		return door.Sealed{}, err
	}
	sealed, err := v.Seal(ctx, fieldSubscription, page)
	if errors.Is(err, door.ErrShredded) {
		return door.Sealed{}, nil
	}
	return sealed, err
}

// openPage opens the page a subscription began on for the subscriber's own
// request ("" when none was kept or its key was destroyed).
func (s *Service) openPage(ctx context.Context, v *door.View, sub *Subscription) error {
	page, err := v.Open(ctx, fieldSubscription, sub.sourcePage)
	if errors.Is(err, door.ErrShredded) {
		page, err = "", nil
	}
	sub.SourcePage = page
	return err
}

func sourceOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *Service) mailConfirmation(ctx context.Context, q store.Q, list List, subj subject.Subject, nonce string) error {
	tok, err := s.d.Links.Sign(consent.Claims{Scope: consent.ScopeConfirm, List: list.ID, Subject: subj.ID, Ref: nonce,
		Expires: s.d.Clock.Now().Add(s.d.ConfirmTTL)})
	if err != nil {
		return err
	}
	link := s.d.BaseURL + "/newsletters/confirm?token=" + url.QueryEscape(tok)
	text := fmt.Sprintf("Someone, hopefully you, asked to subscribe this address to %q from %s.\n\n"+
		"To confirm, open this link and press the button on the page:\n%s\n\n"+
		"If it was not you, ignore this mail: nothing happens unless the button is pressed, and the link stops working in %d days.\n",
		list.Name, s.d.Policy.Policy.Controller.Name, link, int(s.d.ConfirmTTL.Hours()/24))
	// Asking the person to confirm answers their own request.
	v, err := s.d.Door.Subject(ctx, q, door.Subject(), subj.ID)
	if err != nil {
		return err
	}
	addr, err := subj.Email(ctx, v)
	if err != nil {
		return fmt.Errorf("newsletter: confirmation mail: %w", err)
	}
	_, err = s.d.Outbox.Enqueue(ctx, q, mail.Message{
		SubjectID: subj.ID, To: addr, Subject: "Confirm your subscription to " + list.Name,
		Text: text, Kind: "newsletter-confirm", Purpose: policy.SubjectRequest,
	})
	if err != nil {
		return fmt.Errorf("newsletter: confirmation mail: %w", err)
	}
	return nil
}

// confirm makes a pending subscription confirmed and records the consent.
func (s *Service) confirm(ctx context.Context, q store.Q, list List, cur Subscription, method consent.Method, ev consent.Evidence, point string) error {
	rec, err := s.d.Ledger.Record(ctx, q, consent.Change{
		SubjectID: cur.SubjectID, Purpose: list.Purpose, Scope: "list:" + list.ID, State: consent.Given,
		Method: method, CollectionPoint: point, Evidence: ev,
	})
	if err != nil {
		return err
	}
	now := s.d.Clock.Now()
	if _, err := q.ExecContext(ctx, `UPDATE newsletter_subscriptions SET status = 'confirmed', confirmed_at = $2, confirm_nonce = '',
		consent_record_id = $3, unsubscribed_at = NULL, unsubscribe_method = '', updated_at = $2 WHERE id = $1`, cur.ID, now, rec.ID); err != nil {
		return fmt.Errorf("newsletter: confirm: %w", err)
	}
	return nil
}

// Pending describes a confirmation link for the page that asks the person
// to press the button.
type PendingConfirmation struct {
	ListName string
}

// CheckConfirmation reads a confirmation token without changing anything:
// the GET of the link shows a page, only the POST confirms.
func (s *Service) CheckConfirmation(ctx context.Context, token string) (PendingConfirmation, error) {
	c, err := s.d.Links.Verify(token, consent.ScopeConfirm)
	if err != nil {
		return PendingConfirmation{}, err
	}
	list, err := s.getList(ctx, s.d.DB, c.List)
	if err != nil {
		return PendingConfirmation{}, consent.ErrBadLink
	}
	cur, found, err := s.subscription(ctx, s.d.DB, c.List, c.Subject)
	if err != nil {
		return PendingConfirmation{}, err
	}
	if !found || !(cur.Status == Confirmed || (cur.Status == Pending && cur.confirmNonce == c.Ref)) {
		return PendingConfirmation{}, consent.ErrBadLink
	}
	return PendingConfirmation{ListName: list.Name}, nil
}

// Confirm confirms a subscription by its token. Confirming twice is
// harmless; a token of a superseded or ended subscription is refused
// (consent.ErrBadLink), so an old link cannot resubscribe someone who left.
func (s *Service) Confirm(ctx context.Context, token string, ev consent.Evidence) error {
	c, err := s.d.Links.Verify(token, consent.ScopeConfirm)
	if err != nil {
		return err
	}
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		list, err := s.getList(ctx, tx, c.List)
		if err != nil {
			return consent.ErrBadLink
		}
		cur, found, err := s.subscription(ctx, tx, c.List, c.Subject)
		if err != nil {
			return err
		}
		if found && cur.Status == Confirmed {
			return nil
		}
		if !found || cur.Status != Pending || cur.confirmNonce == "" || cur.confirmNonce != c.Ref {
			return consent.ErrBadLink
		}
		// Confirming is the person's own request; the page they subscribed
		// on is where their consent was collected.
		v, err := s.d.Door.Subject(ctx, tx, door.Subject(), cur.SubjectID)
		if err != nil {
			return err
		}
		if err := s.openPage(ctx, v, &cur); err != nil {
			return err
		}
		return s.confirm(ctx, tx, list, cur, consent.MethodEmailLink, ev, sourceOr(cur.SourcePage, "confirmation link"))
	})
}

// Unsubscribe ends the subscription a one-click token names. It answers
// the same whether or not there was anything to end, and doing it twice
// is harmless (RFC 8058 clients may retry).
func (s *Service) Unsubscribe(ctx context.Context, token string, ev consent.Evidence) error {
	c, err := s.d.Links.Verify(token, consent.ScopeUnsubscribe)
	if err != nil {
		return err
	}
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		id, err := s.liveID(ctx, tx, c.Subject)
		if err != nil {
			return nil // an erased or unknown person has nothing to end
		}
		return s.end(ctx, tx, c.List, id, consent.MethodEmailLink, ev, "one-click unsubscribe", "")
	})
}

// liveID follows a merge so that a link mailed before the merge still
// works.
func (s *Service) liveID(ctx context.Context, q store.Q, id string) (string, error) {
	for range 8 {
		sub, err := s.d.Subjects.Get(ctx, q, id)
		if err != nil {
			return "", err
		}
		if sub.MergedInto == "" {
			if sub.Erased() {
				return "", fault.New(fault.NotFound, "no such subject")
			}
			return sub.ID, nil
		}
		id = sub.MergedInto
	}
	return "", fault.New(fault.NotFound, "no such subject")
}

// end unsubscribes subjectID from listID, recording the withdrawal of the
// list-scoped consent when one was given. actor "" means the subject.
func (s *Service) end(ctx context.Context, q store.Q, listID, subjectID string, method consent.Method, ev consent.Evidence, point, actor string) error {
	cur, found, err := s.subscription(ctx, q, listID, subjectID)
	if err != nil || !found || cur.Status == Unsubscribed {
		return err
	}
	list, err := s.getList(ctx, q, listID)
	if err != nil {
		return err
	}
	now := s.d.Clock.Now()
	if _, err := q.ExecContext(ctx, `UPDATE newsletter_subscriptions SET status = 'unsubscribed', unsubscribed_at = $2,
		unsubscribe_method = $3, confirm_nonce = '', updated_at = $2 WHERE id = $1`, cur.ID, now, string(method)); err != nil {
		return fmt.Errorf("newsletter: unsubscribe: %w", err)
	}
	if cur.Status != Confirmed {
		return nil // a pending subscription never gave consent
	}
	_, err = s.d.Ledger.Record(ctx, q, consent.Change{
		SubjectID: subjectID, Purpose: list.Purpose, Scope: "list:" + listID, State: consent.Withdrawn,
		Method: method, CollectionPoint: point, Evidence: ev, Actor: actor,
	})
	return err
}

// StaffUnsubscribe unsubscribes the person with this address from one list
// (or every list when listID is ""), for staff acting on a request by mail
// or phone (promise M7). It answers the same for an address that never
// subscribed, so it cannot be used to learn who is subscribed.
func (s *Service) StaffUnsubscribe(ctx context.Context, staffID, email, listID string) error {
	norm, err := subject.NormalizeEmail(email)
	if err != nil {
		return err
	}
	if listID != "" {
		if _, err := s.getList(ctx, s.d.DB, listID); err != nil {
			return err
		}
	}
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		subj, err := s.d.Subjects.FindByEmail(ctx, tx, s.d.Door, norm)
		if fault.Is(err, fault.NotFound) {
			return s.audit(ctx, tx, "staff:"+staffID, "newsletter.staff_unsubscribe", "", map[string]string{"list": listOrAll(listID), "found": "no"})
		}
		if err != nil {
			return err
		}
		lists, err := s.subscribedLists(ctx, tx, subj.ID, listID)
		if err != nil {
			return err
		}
		for _, l := range lists {
			if err := s.end(ctx, tx, l, subj.ID, consent.MethodStaff, consent.Evidence{}, "staff on request", "staff:"+staffID); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, "staff:"+staffID, "newsletter.staff_unsubscribe", subj.ID, map[string]string{"list": listOrAll(listID), "found": "yes"})
	})
}

func listOrAll(id string) string {
	if id == "" {
		return "*"
	}
	return id
}

func (s *Service) subscribedLists(ctx context.Context, q store.Q, subjectID, only string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT list_id FROM newsletter_subscriptions WHERE subject_id = $1 AND status <> 'unsubscribed' ORDER BY list_id`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("newsletter: subscriptions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("newsletter: subscriptions: %w", err)
		}
		if only == "" || id == only {
			out = append(out, id)
		}
	}
	return out, rows.Err()
}

// subscriptions returns every subscription of a subject, their source
// pages left sealed.
func (s *Service) subscriptions(ctx context.Context, q store.Q, subjectID string) ([]Subscription, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+subColumns+` FROM newsletter_subscriptions WHERE subject_id = $1 ORDER BY list_id`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("newsletter: subscriptions: %w", err)
	}
	defer rows.Close()
	out := []Subscription{}
	for rows.Next() {
		sub, err := scanSub(rows)
		if err != nil {
			return nil, fmt.Errorf("newsletter: subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// MemberUnsubscribe ends a signed-in member's subscription from the
// privacy centre: withdrawing is one action, as giving was.
func (s *Service) MemberUnsubscribe(ctx context.Context, subjectID, listID string, method consent.Method, ev consent.Evidence) error {
	if _, err := s.getList(ctx, s.d.DB, listID); err != nil {
		return err
	}
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		return s.end(ctx, tx, listID, subjectID, method, ev, "/account/privacy", "")
	})
}

// PreferenceItem is one list on the preferences page.
type PreferenceItem struct {
	List            List   `json:"list"`
	Status          Status `json:"status"` // "" when never subscribed
	Tracking        bool   `json:"tracking"`
	TrackingOffered bool   `json:"tracking_offered"`
}

// Preferences is what a preferences link shows.
type Preferences struct {
	SubjectID string           `json:"-"`
	Items     []PreferenceItem `json:"lists"`
}

// PreferencesLink returns a signed preferences link for a subject.
func (s *Service) PreferencesLink(subjectID string) (string, error) {
	tok, err := s.d.Links.Sign(consent.Claims{Scope: consent.ScopePreferences, Subject: subjectID, Expires: s.d.Clock.Now().Add(s.d.PreferencesTTL)})
	if err != nil {
		return "", err
	}
	return s.d.BaseURL + "/newsletters/preferences?token=" + url.QueryEscape(tok), nil
}

// UnsubscribeLink returns the one-click link of a subject and list.
func (s *Service) UnsubscribeLink(subjectID, listID string) (string, error) {
	tok, err := s.d.Links.Sign(consent.Claims{Scope: consent.ScopeUnsubscribe, List: listID, Subject: subjectID})
	if err != nil {
		return "", err
	}
	return s.d.BaseURL + "/newsletters/unsubscribe?token=" + url.QueryEscape(tok), nil
}

// PreferencesFor reads the preferences a token opens.
func (s *Service) PreferencesFor(ctx context.Context, token string) (Preferences, error) {
	c, err := s.d.Links.Verify(token, consent.ScopePreferences)
	if err != nil {
		return Preferences{}, err
	}
	id, err := s.liveID(ctx, s.d.DB, c.Subject)
	if err != nil {
		return Preferences{}, consent.ErrBadLink
	}
	return s.preferences(ctx, s.d.DB, id)
}

func (s *Service) preferences(ctx context.Context, q store.Q, subjectID string) (Preferences, error) {
	lists, err := s.lists(ctx, q, false)
	if err != nil {
		return Preferences{}, err
	}
	subs, err := s.subscriptions(ctx, q, subjectID)
	if err != nil {
		return Preferences{}, err
	}
	byList := map[string]Subscription{}
	for _, sub := range subs {
		byList[sub.ListID] = sub
	}
	p := Preferences{SubjectID: subjectID}
	for _, l := range lists {
		sub, ok := byList[l.ID]
		if !l.Open && !ok {
			continue
		}
		item := PreferenceItem{List: l, TrackingOffered: l.Tracks()}
		if ok {
			item.Status = sub.Status
			item.Tracking = sub.Tracking
		}
		p.Items = append(p.Items, item)
	}
	return p, nil
}

// PreferenceChange is one list's new setting.
type PreferenceChange struct {
	List       string
	Subscribed bool
	Tracking   bool
}

// UpdatePreferences applies the choices made on the preferences page. The
// link was mailed to the person's address, so subscribing through it needs
// no further confirmation.
func (s *Service) UpdatePreferences(ctx context.Context, token string, changes []PreferenceChange, ev consent.Evidence) (Preferences, error) {
	c, err := s.d.Links.Verify(token, consent.ScopePreferences)
	if err != nil {
		return Preferences{}, err
	}
	var out Preferences
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		id, err := s.liveID(ctx, tx, c.Subject)
		if err != nil {
			return consent.ErrBadLink
		}
		for _, ch := range changes {
			list, err := s.getList(ctx, tx, ch.List)
			if err != nil {
				return err
			}
			cur, found, err := s.subscription(ctx, tx, list.ID, id)
			if err != nil {
				return err
			}
			active := found && cur.Status == Confirmed
			switch {
			case ch.Subscribed && !active:
				if !list.Open {
					return fault.New(fault.Conflict, "the list %q is closed", list.Name)
				}
				now := s.d.Clock.Now()
				if !found {
					cur = Subscription{ID: randomToken("ns_"), ListID: list.ID, SubjectID: id}
					page, err := s.sealPage(ctx, tx, id, "preferences")
					if err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO newsletter_subscriptions (id, list_id, subject_id, status, source, source_page_sealed,
						policy_version, created_at, updated_at) VALUES ($1, $2, $3, 'pending', 'email_link', $4, $5, $6, $6)`,
						cur.ID, list.ID, id, page, s.d.Policy.Number(), now); err != nil {
						return fmt.Errorf("newsletter: preferences: %w", err)
					}
				}
				if err := s.confirm(ctx, tx, list, cur, consent.MethodEmailLink, ev, "preferences page"); err != nil {
					return err
				}
			case !ch.Subscribed && found && cur.Status != Unsubscribed:
				if err := s.end(ctx, tx, list.ID, id, consent.MethodEmailLink, ev, "preferences page", ""); err != nil {
					return err
				}
			}
			tracking := ch.Tracking && list.Tracks() && ch.Subscribed
			if _, err := tx.ExecContext(ctx, `UPDATE newsletter_subscriptions SET tracking = $3 WHERE list_id = $1 AND subject_id = $2`,
				list.ID, id, tracking); err != nil {
				return fmt.Errorf("newsletter: preferences: %w", err)
			}
		}
		out, err = s.preferences(ctx, tx, id)
		return err
	})
	return out, err
}

// onConsentChange ends every subscription of a purpose when consent to the
// whole purpose is withdrawn (privacy centre, GPC, staff), so the lists a
// person sees match what is in force.
func (s *Service) onConsentChange(ctx context.Context, q store.Q, r consent.Record) error {
	if r.Scope != "" || r.State == consent.Given {
		return nil
	}
	_, err := q.ExecContext(ctx, `UPDATE newsletter_subscriptions SET status = 'unsubscribed', unsubscribed_at = $3,
		unsubscribe_method = $4, confirm_nonce = '', updated_at = $3
		WHERE subject_id = $1 AND status <> 'unsubscribed' AND list_id IN (SELECT id FROM newsletter_lists WHERE purpose = $2)`,
		r.SubjectID, r.Purpose, r.CreatedAt, string(r.Method))
	if err != nil {
		return fmt.Errorf("newsletter: end subscriptions on withdrawal: %w", err)
	}
	return nil
}

// merge re-points a merged subject's rows. Where both had a subscription
// to the same list, the more committed one survives (confirmed over
// pending over unsubscribed).
func (s *Service) merge(ctx context.Context, tx *sql.Tx, from, into string) error {
	rank := map[string]int{"confirmed": 3, "pending": 2, "unsubscribed": 1}
	rows, err := tx.QueryContext(ctx, `SELECT a.list_id, a.status, b.status FROM newsletter_subscriptions a
		JOIN newsletter_subscriptions b ON b.list_id = a.list_id AND b.subject_id = $2 WHERE a.subject_id = $1`, from, into)
	if err != nil {
		return fmt.Errorf("newsletter: merge: %w", err)
	}
	type clash struct{ list, fromStatus, intoStatus string }
	var clashes []clash
	for rows.Next() {
		var c clash
		if err := rows.Scan(&c.list, &c.fromStatus, &c.intoStatus); err != nil {
			rows.Close()
			return fmt.Errorf("newsletter: merge: %w", err)
		}
		clashes = append(clashes, c)
	}
	rows.Close()
	for _, c := range clashes {
		drop := from
		if rank[c.fromStatus] > rank[c.intoStatus] {
			drop = into
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM newsletter_subscriptions WHERE list_id = $1 AND subject_id = $2`, c.list, drop); err != nil {
			return fmt.Errorf("newsletter: merge: %w", err)
		}
	}
	for _, stmt := range []string{
		`UPDATE newsletter_subscriptions SET subject_id = $2 WHERE subject_id = $1`,
		`DELETE FROM newsletter_sends WHERE subject_id = $1 AND campaign_id IN (SELECT campaign_id FROM newsletter_sends WHERE subject_id = $2)`,
		`UPDATE newsletter_sends SET subject_id = $2 WHERE subject_id = $1`,
		`UPDATE newsletter_events SET subject_id = $2 WHERE subject_id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, stmt, from, into); err != nil {
			return fmt.Errorf("newsletter: merge: %w", err)
		}
	}
	return nil
}
