package support

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/blob"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/store"
	"steward/internal/subject"
)

// quarantineKind names the desk's quarantine in the door.
const quarantineKind = "support-mail"

// Reasons a message or a request is held.
const (
	HeldUnconfirmed = "waiting for the sender to confirm their address"
	// heldReleasing marks an item a confirmation is releasing.
	heldReleasing = "being released"
)

// replyMAC signs a request id for its reply address.
func (s *Service) replyMAC(requestID string) string {
	m := hmac.New(sha256.New, s.d.LinkKey)
	m.Write([]byte("support reply address v1|" + requestID))
	return hex.EncodeToString(m.Sum(nil)[:10])
}

// ReplyAddress is the address replies to a request's mail go to: the
// desk's address with the request and its signature after a '+'. "" when
// no address is configured.
func (s *Service) ReplyAddress(requestID string) string {
	local, domain, ok := strings.Cut(s.d.Address, "@")
	if !ok {
		return ""
	}
	return local + "+" + requestID + "." + s.replyMAC(requestID) + "@" + domain
}

// route says what an address of the desk is: the desk's own address, a
// request's reply address (its id, verified), or not the desk's.
func (s *Service) route(addr string) (desk bool, requestID string, err error) {
	local, domain, ok := strings.Cut(strings.ToLower(strings.TrimSpace(addr)), "@")
	dl, dd, _ := strings.Cut(strings.ToLower(s.d.Address), "@")
	if !ok || domain != dd || s.d.Address == "" {
		return false, "", nil
	}
	if local == dl {
		return true, "", nil
	}
	tag, ok := strings.CutPrefix(local, dl+"+")
	if !ok {
		return false, "", nil
	}
	id, mac, ok := strings.Cut(tag, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.replyMAC(id))) {
		return true, "", fault.New(fault.Invalid, "this reply address is not valid: reply to the message you received, or write to %s", s.d.Address)
	}
	return true, id, nil
}

// Accepts reports whether the desk takes mail for a recipient address (the
// SMTP listener asks before the message is sent).
func (s *Service) Accepts(rcpt string) error {
	desk, _, err := s.route(rcpt)
	if err != nil {
		return err
	}
	if !desk {
		return fault.New(fault.Invalid, "no such mailbox here")
	}
	return nil
}

// MailLimits bound one message in.
func (s *Service) MailLimits(trustedAuthServ string) mail.InboundLimits {
	return mail.InboundLimits{MaxAttachments: s.lim.MaxFiles, TrustedAuthServ: trustedAuthServ}
}

// Deliver takes one message the SMTP listener received. A reply to a
// request's address joins that request when it comes from the requester's
// own address (the signed address proves they received our mail); a
// message to the desk's address from someone the desk knows (a member, or
// a person with requests) opens a request when the relay in front reports
// a DMARC pass for the sender's domain; any other is held, sealed, until
// the sender follows the link mailed to them.
// Everything refused is refused with its reason (the listener answers it
// as a permanent failure) and audited; nothing is half-stored.
func (s *Service) Deliver(ctx context.Context, rcpts []string, raw io.Reader, lim mail.InboundLimits) error {
	if !s.Enabled() {
		return fault.New(fault.Invalid, "this site keeps no support records")
	}
	sp, err := door.NewSpool(s.spoolDir(), raw, mailMax(lim))
	if err != nil {
		return s.refuseMail(ctx, "too-large", err)
	}
	defer sp.Close()
	msg, err := mail.ParseInbound(sp.Reader(), lim, s.spoolDir())
	if err != nil {
		return s.refuseMail(ctx, "malformed", err)
	}
	defer msg.Close()
	if msg.Auth.DMARC == "fail" || (msg.Auth.DMARC == "" && msg.Auth.SPF == "fail" && msg.Auth.DKIM == "fail") {
		return s.refuseMail(ctx, "sender-authentication",
			fault.New(fault.Invalid, "the sender's domain does not vouch for this message (SPF, DKIM or DMARC failed)"))
	}
	var requestID string
	desk := false
	for _, r := range rcpts {
		d, id, err := s.route(r)
		if err != nil {
			return s.refuseMail(ctx, "bad-reply-address", err)
		}
		desk = desk || d
		if id != "" {
			requestID = id
		}
	}
	if !desk {
		return s.refuseMail(ctx, "not-ours", fault.New(fault.Invalid, "no such mailbox here"))
	}
	index, err := subject.EmailIndex(s.d.Door, msg.From)
	if err != nil {
		return s.refuseMail(ctx, "sender", fault.New(fault.Invalid, "the sender's address is not valid"))
	}
	in := inbound{channel: ChannelMail, spf: msg.Auth.SPF, dkim: msg.Auth.DKIM, dmarc: msg.Auth.DMARC}
	for _, a := range msg.Attachments {
		r, err := a.Open()
		if err != nil {
			return err
		}
		in.files = append(in.files, Upload{Name: a.Name, Body: r})
	}
	if requestID != "" {
		return s.deliverReply(ctx, requestID, index, msg, in)
	}
	d, err := s.mailDraft(msg)
	if err != nil {
		return s.refuseMail(ctx, "content", err)
	}
	sub, err := s.d.Subjects.FindByEmail(ctx, s.d.DB, s.d.Door, msg.From)
	switch {
	case err == nil && !sub.Erased() && sub.MergedInto == "" && msg.Auth.DMARC == "pass":
		// A From header alone proves nothing: only when the relay in front
		// vouches for the sender's domain does a known person's mail open
		// a request at once. Otherwise it waits, like a stranger's, for
		// the link mailed to the address.
		known, err := s.knows(ctx, sub)
		if err != nil {
			return err
		}
		if known {
			id, err := s.create(ctx, sub.ID, ChannelMail, d, in)
			if err != nil {
				return err
			}
			return s.audit(ctx, s.d.DB, audit.Event{Actor: "system", Action: "support.mail_opened", Subject: sub.ID,
				Detail: map[string]string{"request": id}})
		}
	case err != nil && !fault.Is(err, fault.NotFound):
		return err
	}
	return s.hold(ctx, msg.From, index, nil, sp)
}

func mailMax(lim mail.InboundLimits) int64 {
	if lim.MaxBytes > 0 {
		return lim.MaxBytes
	}
	return 50 << 20
}

// knows reports whether the desk knows a person well enough to open a
// request from their mail: a member, or someone who confirmed a request.
func (s *Service) knows(ctx context.Context, sub subject.Subject) (bool, error) {
	if sub.Kind == subject.KindMember {
		return true, nil
	}
	var n int
	err := s.d.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM support_requests WHERE subject_id = $1`, sub.ID).Scan(&n)
	return n > 0, err
}

// deliverReply adds a reply by mail to its request, only from the
// requester's own address.
func (s *Service) deliverReply(ctx context.Context, requestID string, senderIndex []byte, msg *mail.Inbound, in inbound) error {
	r, err := s.load(ctx, s.d.DB, requestID)
	if err != nil {
		return s.refuseMail(ctx, "no-request", fault.New(fault.Invalid, "this request no longer exists: write to %s", s.d.Address))
	}
	sub, err := s.d.Subjects.Get(ctx, s.d.DB, r.subject)
	if err != nil {
		return err
	}
	if !sub.EmailIndexIs(senderIndex) {
		return s.refuseMail(ctx, "not-the-requester",
			fault.New(fault.Invalid, "this reply address belongs to a request opened from another address: reply from that address, or write to %s", s.d.Address))
	}
	if err := s.addFromRequester(ctx, r, replyText(msg.Text), in); err != nil {
		if fault.CodeOf(err) == fault.Internal {
			return err
		}
		return s.refuseMail(ctx, "content", err)
	}
	return s.audit(ctx, s.d.DB, audit.Event{Actor: "system", Action: "support.mail_threaded", Subject: r.subject,
		Detail: map[string]string{"request": r.id}})
}

// replyText is a mail's text without the quoted message it answers (the
// lines from "On … wrote:" or a run of "> " lines at its end).
func replyText(text string) string {
	lines := strings.Split(text, "\n")
	end := len(lines)
	for end > 0 && (strings.TrimSpace(lines[end-1]) == "" || strings.HasPrefix(lines[end-1], ">")) {
		end--
	}
	if end > 0 {
		last := strings.TrimSpace(lines[end-1])
		if strings.HasPrefix(last, "On ") && strings.HasSuffix(last, "wrote:") && end < len(lines) {
			end--
		}
	}
	return strings.TrimSpace(strings.Join(lines[:end], "\n"))
}

// mailDraft is a new request's title and text from a message.
func (s *Service) mailDraft(msg *mail.Inbound) (draftText, error) {
	title := strings.TrimSpace(msg.Subject)
	if title == "" {
		title = "(no subject)"
	}
	if len(title) > s.lim.MaxTitle {
		title = strings.ToValidUTF8(title[:s.lim.MaxTitle], "")
	}
	text := strings.TrimSpace(msg.Text)
	if text == "" && len(msg.Attachments) > 0 {
		text = "(attachments only)"
	}
	if len(text) > s.lim.MaxText {
		return draftText{}, fault.New(fault.TooLarge, "the message text is longer than the %d bytes a support request takes", s.lim.MaxText)
	}
	for _, a := range msg.Attachments {
		if a.Size > s.lim.MaxFile {
			return draftText{}, fault.New(fault.TooLarge, "an attachment is larger than the %d MB a support request takes", s.lim.MaxFile>>20)
		}
		if a.Size == 0 {
			return draftText{}, fault.New(fault.Invalid, "an attachment is empty")
		}
	}
	if len(msg.Attachments) > s.lim.MaxFiles {
		return draftText{}, fault.New(fault.Invalid, "a support message takes at most %d attachments", s.lim.MaxFiles)
	}
	return s.draft(title, text, nil)
}

// refuseMail audits a refused message (its reason, never its sender or
// content) and returns the refusal.
func (s *Service) refuseMail(ctx context.Context, reason string, err error) error {
	if aerr := s.audit(ctx, s.d.DB, audit.Event{Actor: "system", Action: "support.mail_refused",
		Detail: map[string]string{"reason": reason, "code": string(fault.CodeOf(err))}}); aerr != nil {
		return aerr
	}
	s.d.Log.Info("support: mail refused", "reason", reason, "code", fault.CodeOf(err))
	return err
}

// webDraft is a request from the web form of someone not signed in, held
// until they confirm their address.
type webDraft struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Submit takes a request from someone not signed in: it is held, sealed,
// and a link to confirm the address is mailed to it. The answer is the
// same whether the address is known or not. A few a minute per client
// network: the form cannot be used to flood mailboxes from one place.
func (s *Service) Submit(ctx context.Context, email, title, text string, client netip.Addr) error {
	if !s.submits.Allow(client) {
		return fault.New(fault.RateLimited, "too many requests from your network; try again in a minute")
	}
	if !s.Enabled() {
		return fault.New(fault.Invalid, "this site keeps no support records (the privacy policy declares none)")
	}
	d, err := s.draft(title, text, nil)
	if err != nil {
		return err
	}
	index, err := subject.EmailIndex(s.d.Door, email)
	if err != nil {
		return fault.FieldError("email", "must be a valid email address")
	}
	b, _ := json.Marshal(webDraft{Title: d.Title, Text: d.Text})
	return s.hold(ctx, email, index, b, nil)
}

// hold keeps a draft (a web request) or a raw message (mail) in quarantine
// and mails its sender a link that releases it. One mail per sender per
// hour at most: a stream of forged messages cannot flood an address.
func (s *Service) hold(ctx context.Context, email string, index, draft []byte, raw *door.Spool) error {
	q := s.d.Door.Quarantine(quarantineKind)
	id := store.NewID("q_")
	now := s.now()
	var blobKey string
	var size int64
	if raw != nil {
		blobKey, size = "support/quarantine/"+id, raw.Size()
		if err := blobWriteSealed(ctx, s, q, id, blobKey, raw.Reader()); err != nil {
			return err
		}
	}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var sealed []byte
		if draft != nil {
			var err error
			if sealed, err = q.Seal(ctx, tx, id, draft); err != nil {
				return err
			}
		}
		var recent int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM support_quarantine WHERE sender_index = $1 AND mailed_at > $2`,
			index, now.Add(-time.Hour)).Scan(&recent); err != nil {
			return err
		}
		var mailed sql.NullTime
		if recent == 0 {
			mailed = sql.NullTime{Time: now, Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO support_quarantine (id, reason, sender_index, draft_sealed, blob, size, received_at, expires_at, mailed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, HeldUnconfirmed, index, sealed, blobKey, size, now, now.Add(s.lim.QuarantineFor), mailed); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, audit.Event{Actor: "system", Action: "support.held",
			Detail: map[string]string{"held": id, "reason": HeldUnconfirmed}}); err != nil {
			return err
		}
		if !mailed.Valid {
			return nil
		}
		return s.mailConfirm(ctx, tx, email, id, now.Add(s.lim.QuarantineFor))
	})
	if err != nil {
		if blobKey != "" {
			s.d.Blobs.Delete(context.WithoutCancel(ctx), blobKey)
		}
		q.Destroy(context.WithoutCancel(ctx), s.d.DB, id)
		return fmt.Errorf("support: hold: %w", err)
	}
	return nil
}

// mailConfirm mails the link that releases held requests of an address.
// The mail needs a subject to belong to: the address's, made email-only
// when there is none (it holds the address alone until they confirm).
func (s *Service) mailConfirm(ctx context.Context, tx *sql.Tx, email, heldID string, expires time.Time) error {
	sub, _, err := s.d.Subjects.EnsureByEmail(ctx, tx, s.d.Door, door.System(s.purpose), email, "support", s.d.Policy.Number())
	if err != nil {
		return err
	}
	if sub.Erased() || sub.MergedInto != "" {
		return nil // the same answer as for any address
	}
	v, err := s.d.Door.Subject(ctx, tx, door.System(s.purpose), sub.ID)
	if err != nil {
		return err
	}
	to, err := s.d.Subjects.Email(ctx, tx, v)
	if err != nil {
		return err
	}
	base := strings.TrimRight(s.d.BaseURL, "/")
	link := base + "/support/confirm?token=" + s.heldToken(heldID, expires)
	_, err = s.d.Outbox.Enqueue(ctx, tx, mail.Message{SubjectID: sub.ID, To: to, Kind: "support-confirm", Purpose: s.purpose,
		Subject: "Confirm your support request",
		Text: "Hello,\n\nwe received a support request from this address. To send it to our support team, open this link:\n\n" + link +
			"\n\nThe link works until " + expires.UTC().Format("2 January 2006") + ". If you did not write to us, ignore this message: " +
			"the request is deleted unread.\n\nYour address is kept only to answer you and for your privacy requests: " + base + "/privacy/request\n"})
	return err
}

// heldToken signs a held id and an expiry.
func (s *Service) heldToken(heldID string, expires time.Time) string {
	msg := binary.BigEndian.AppendUint64([]byte(heldID+"|"), uint64(expires.Unix()))
	m := hmac.New(sha256.New, s.d.LinkKey)
	m.Write([]byte("support held v1|"))
	m.Write(msg)
	return base64.RawURLEncoding.EncodeToString(append(msg, m.Sum(nil)...))
}

func (s *Service) parseHeldToken(token string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 8+1+sha256.Size {
		return "", false
	}
	msg, sum := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	m := hmac.New(sha256.New, s.d.LinkKey)
	m.Write([]byte("support held v1|"))
	m.Write(msg)
	if !hmac.Equal(sum, m.Sum(nil)) {
		return "", false
	}
	id, _, ok := bytes.Cut(msg[:len(msg)-8], []byte("|"))
	exp := time.Unix(int64(binary.BigEndian.Uint64(msg[len(msg)-8:])), 0)
	if !ok || s.d.Clock.Now().After(exp) {
		return "", false
	}
	return string(id), true
}

// Confirm releases what a mailed link names, and every other request the
// same address has waiting: the link proves the address is the sender's.
// It returns the subject the requests now belong to. A forged, expired or
// used link is fault.NotFound, the same answer for each.
func (s *Service) Confirm(ctx context.Context, token string) (string, error) {
	bad := fault.New(fault.NotFound, "this link is not valid, or has expired")
	id, ok := s.parseHeldToken(token)
	if !ok {
		return "", bad
	}
	var index []byte
	err := s.d.DB.QueryRowContext(ctx, `SELECT sender_index FROM support_quarantine WHERE id = $1 AND expires_at > $2`, id, s.now()).Scan(&index)
	if errors.Is(err, sql.ErrNoRows) {
		return "", bad
	}
	if err != nil {
		return "", err
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT id, draft_sealed, blob FROM support_quarantine WHERE sender_index = $1 AND expires_at > $2 ORDER BY received_at, id`,
		index, s.now())
	if err != nil {
		return "", err
	}
	type held struct {
		id, blob string
		draft    []byte
	}
	var all []held
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.id, &h.draft, &h.blob); err != nil {
			rows.Close()
			return "", err
		}
		all = append(all, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	owner, err := s.ownerOf(ctx, index)
	if err != nil {
		return "", err
	}
	if owner == "" {
		return "", bad
	}
	for _, h := range all {
		if err := s.release(ctx, owner, h.id, h.draft, h.blob); err != nil {
			return "", err
		}
	}
	return owner, nil
}

// claim takes a held item for release, so that two confirmations at once
// (a double click, two tabs) release it once: the one whose update
// changed the row goes on, the other skips it.
func (s *Service) claim(ctx context.Context, heldID string) (bool, error) {
	res, err := s.d.DB.ExecContext(ctx, `UPDATE support_quarantine SET reason = $2 WHERE id = $1 AND reason = $3`, heldID, heldReleasing, HeldUnconfirmed)
	if err != nil {
		return false, fmt.Errorf("support: claim held: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ownerOf is the live subject holding the address of a blind index ("" when
// none: the address was erased since).
func (s *Service) ownerOf(ctx context.Context, index []byte) (string, error) {
	sub, err := s.d.Subjects.FindByEmailIndex(ctx, s.d.DB, index)
	if fault.Is(err, fault.NotFound) || (err == nil && (sub.Erased() || sub.MergedInto != "")) {
		return "", nil
	}
	return sub.ID, err
}

// release turns one held request into a request of owner, then destroys
// what was held.
func (s *Service) release(ctx context.Context, owner, heldID string, draft []byte, blobKey string) error {
	ok, err := s.claim(ctx, heldID)
	if err != nil || !ok {
		return err
	}
	err = s.releaseClaimed(ctx, owner, heldID, draft, blobKey)
	switch fault.CodeOf(err) {
	case fault.Invalid, fault.TooLarge, fault.Unsupported:
		// What can never become a request (held before the desk's limits
		// changed, say) goes, with its reason, instead of blocking every
		// later confirmation of the address.
		return s.forget(ctx, heldID, blobKey, audit.Event{Actor: "subject", Action: "support.held_dropped", Subject: owner,
			Detail: map[string]string{"held": heldID, "reason": string(fault.CodeOf(err))}})
	case fault.Internal:
		if err != nil {
			if _, uerr := s.d.DB.ExecContext(context.WithoutCancel(ctx), `UPDATE support_quarantine SET reason = $2 WHERE id = $1`, heldID, HeldUnconfirmed); uerr != nil {
				s.d.Log.Warn("support: a held item could not be given back after a failed release", "held", heldID, "err", uerr)
			}
		}
	}
	return err
}

func (s *Service) releaseClaimed(ctx context.Context, owner, heldID string, draft []byte, blobKey string) error {
	q := s.d.Door.Quarantine(quarantineKind)
	var d draftText
	in := inbound{channel: ChannelWeb}
	var msg *mail.Inbound
	switch {
	case draft != nil:
		b, err := q.Open(ctx, s.d.DB, heldID, draft)
		if err != nil {
			return err
		}
		var w webDraft
		if err := json.Unmarshal(b, &w); err != nil {
			return err
		}
		d = draftText{Title: w.Title, Text: w.Text}
	case blobKey != "":
		rc, err := s.d.Blobs.Get(ctx, blobKey)
		if err != nil {
			return err
		}
		defer rc.Close()
		plain, err := q.OpenStream(ctx, s.d.DB, heldID, rc)
		if err != nil {
			return err
		}
		if msg, err = mail.ParseInbound(plain, s.MailLimits(""), s.spoolDir()); err != nil {
			return err
		}
		defer msg.Close()
		if d, err = s.mailDraft(msg); err != nil {
			return err
		}
		in.channel = ChannelMail
		for _, a := range msg.Attachments {
			r, err := a.Open()
			if err != nil {
				return err
			}
			in.files = append(in.files, Upload{Name: a.Name, Body: r})
		}
	}
	id, err := s.create(ctx, owner, in.channel, d, in)
	if err != nil {
		return err
	}
	return s.forget(ctx, heldID, blobKey, audit.Event{Actor: "subject", Action: "support.released", Subject: owner,
		Detail: map[string]string{"held": heldID, "request": id}})
}

// forget destroys a held item: its key, its row and its file.
func (s *Service) forget(ctx context.Context, heldID, blobKey string, e audit.Event) error {
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.d.Door.Quarantine(quarantineKind).Destroy(ctx, tx, heldID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM support_quarantine WHERE id = $1`, heldID); err != nil {
			return err
		}
		return s.audit(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("support: forget held: %w", err)
	}
	if blobKey != "" {
		if err := s.d.Blobs.Delete(ctx, blobKey); err != nil {
			s.d.Log.Warn("support: a held message's file was not removed", "blob", blobKey, "err", err)
		}
	}
	return nil
}

// Prune deletes what was held past its time, unconfirmed: its key, row
// and file. It returns how many went.
func (s *Service) Prune(ctx context.Context) (int, error) {
	rows, err := s.d.DB.QueryContext(ctx, `SELECT id, blob FROM support_quarantine WHERE expires_at <= $1 ORDER BY expires_at LIMIT 500`, s.now())
	if err != nil {
		return 0, fmt.Errorf("support: prune: %w", err)
	}
	type held struct{ id, blob string }
	var all []held
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.id, &h.blob); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for i, h := range all {
		if err := s.forget(ctx, h.id, h.blob, audit.Event{Actor: "system", Action: "support.held_expired",
			Detail: map[string]string{"held": h.id}}); err != nil {
			return i, err
		}
	}
	return len(all), nil
}

// blobWriteSealed stores r in blob storage sealed under a held item's key.
func blobWriteSealed(ctx context.Context, s *Service, q *door.Quarantine, id, key string, r io.Reader) error {
	return blob.Write(ctx, s.d.Blobs, key, func(w io.Writer) error {
		sealer, err := q.SealStream(ctx, s.d.DB, id, w)
		if err != nil {
			return err
		}
		if _, err := io.Copy(sealer, r); err != nil {
			return err
		}
		return sealer.Close()
	})
}

// mailAnswer queues staff's answer to the requester, from the request's
// reply address.
func (s *Service) mailAnswer(ctx context.Context, tx *sql.Tx, v *door.View, r requestRow, title, text string, files int) error {
	to, err := s.d.Subjects.Email(ctx, tx, v)
	if err != nil || to == "" {
		return err
	}
	base := strings.TrimRight(s.d.BaseURL, "/")
	body := text + "\n\n-- \n"
	if files > 0 {
		body += fmt.Sprintf("%d file(s) came with this answer: see them with your request at %s/account/support/%s\n", files, base, r.id)
	}
	reply := s.ReplyAddress(r.id)
	if reply != "" {
		body += "Reply to this message to add to your request.\n"
	} else {
		body += "Answer on " + base + "/account/support/" + r.id + "\n"
	}
	_, err = s.d.Outbox.Enqueue(ctx, tx, mail.Message{SubjectID: v.ID(), To: to, Kind: "support-answer", Purpose: s.purpose,
		Subject: "Re: " + title + " [" + shortRef(r.id) + "]", Text: body, ReplyTo: reply})
	return err
}

// shortRef is how a request is named in mail subjects.
func shortRef(id string) string {
	return "#" + strings.ToUpper(strings.TrimPrefix(id, "r_"))[:8]
}
