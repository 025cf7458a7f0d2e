package support

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
)

// Request is a support request as its reader may see it.
type Request struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Channel   string    `json:"channel"`
	Status    string    `json:"status"`
	Assignee  string    `json:"assignee,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	ClosedAt  time.Time `json:"closed_at,omitzero"`
	// Requester is the requester's subject id, shown to staff only.
	Requester string `json:"-"`
}

// Message is one exchange of a request.
type Message struct {
	ID        string `json:"id"`
	Direction string `json:"direction"` // in: from the requester; out: from staff
	Channel   string `json:"channel"`
	// Staff is the answering staff member's id, shown to staff only.
	Staff string `json:"-"`
	Text  string `json:"text"`
	// SPF, DKIM and DMARC are what a mail relay in front reported for the
	// sender ("" when it reported nothing).
	SPF       string    `json:"spf,omitempty"`
	DKIM      string    `json:"dkim,omitempty"`
	DMARC     string    `json:"dmarc,omitempty"`
	Files     []File    `json:"files,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// File is an attachment or a recording.
type File struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Mime      string    `json:"mime"`
	Size      int64     `json:"size"`
	NoticeAt  time.Time `json:"notice_given_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
}

// Thread is a request with its exchanges, oldest first.
type Thread struct {
	Request
	Messages []Message `json:"messages"`
}

// Upload is a file someone attaches.
type Upload struct {
	Name string
	Body io.Reader
}

type requestRow struct {
	id, subject, channel, status, assignee string
	title                                  []byte
	created, updated                       time.Time
	closed                                 sql.NullTime
}

const requestCols = `id, subject_id, title_sealed, channel, status, assignee, created_at, updated_at, closed_at`

func scanRequest(row interface{ Scan(...any) error }) (requestRow, error) {
	var r requestRow
	err := row.Scan(&r.id, &r.subject, &r.title, &r.channel, &r.status, &r.assignee, &r.created, &r.updated, &r.closed)
	return r, err
}

func (r requestRow) public(title string) Request {
	out := Request{ID: r.id, Title: title, Channel: r.channel, Status: r.status, Assignee: r.assignee,
		CreatedAt: r.created.UTC(), UpdatedAt: r.updated.UTC(), Requester: r.subject}
	if r.closed.Valid {
		out.ClosedAt = r.closed.Time.UTC()
	}
	return out
}

var errNoRequest = fault.New(fault.NotFound, "no such support request")

func (s *Service) load(ctx context.Context, q store.Q, id string) (requestRow, error) {
	r, err := scanRequest(q.QueryRowContext(ctx, `SELECT `+requestCols+` FROM support_requests WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNoRequest
	}
	if err != nil {
		return r, fmt.Errorf("support: load request: %w", err)
	}
	return r, nil
}

// owned loads a request of the member (a request of anyone else is not
// found: whether it exists is not theirs to know).
func (s *Service) owned(ctx context.Context, q store.Q, memberID, id string) (requestRow, error) {
	r, err := s.load(ctx, q, id)
	if err != nil {
		return r, err
	}
	merged, err := s.d.Subjects.MergedFrom(ctx, q, memberID)
	if err != nil {
		return r, err
	}
	if r.subject != memberID && !containsString(merged, r.subject) {
		return r, errNoRequest
	}
	return r, nil
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// checkText checks a title or an exchange's text: valid UTF-8 without
// control characters other than line breaks and tabs, not empty, bounded.
// It is stored as typed and escaped wherever it is shown.
func checkText(field, v string, maxLen int, required bool) (string, error) {
	v = strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
	switch {
	case !utf8.ValidString(v):
		return "", fault.FieldError(field, "must be valid UTF-8")
	case v == "" && required:
		return "", fault.FieldError(field, "must not be empty")
	case len(v) > maxLen:
		return "", fault.FieldError(field, "must be at most %d bytes", maxLen)
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f }):
		return "", fault.FieldError(field, "must not contain control characters")
	}
	if field == "title" && strings.ContainsRune(v, '\n') {
		return "", fault.FieldError(field, "must be one line")
	}
	return v, nil
}

// Open opens a request for a signed-in member, with its first exchange.
func (s *Service) Open(ctx context.Context, memberID, title, text string, files []Upload) (Thread, error) {
	if !s.Enabled() {
		return Thread{}, fault.New(fault.Invalid, "this site keeps no support records (the privacy policy declares none)")
	}
	d, err := s.draft(title, text, files)
	if err != nil {
		return Thread{}, err
	}
	id, err := s.create(ctx, memberID, ChannelWeb, d, inbound{channel: ChannelWeb, files: files})
	if err != nil {
		return Thread{}, err
	}
	return s.ThreadFor(ctx, memberID, id)
}

// draft checks what a requester writes.
type draftText struct{ Title, Text string }

func (s *Service) draft(title, text string, files []Upload) (draftText, error) {
	var d draftText
	var err error
	if d.Title, err = checkText("title", title, s.lim.MaxTitle, true); err != nil {
		return d, err
	}
	if d.Text, err = checkText("text", text, s.lim.MaxText, true); err != nil {
		return d, err
	}
	if len(files) > s.lim.MaxFiles {
		return d, fault.FieldError("files", "at most %d files at once", s.lim.MaxFiles)
	}
	return d, nil
}

// inbound is one exchange from the requester as it arrived.
type inbound struct {
	channel          string
	spf, dkim, dmarc string
	files            []Upload
}

// create stores a new request of subjectID and its first exchange from
// the requester, files included; on any error nothing is left.
func (s *Service) create(ctx context.Context, subjectID, channel string, d draftText, in inbound) (string, error) {
	v, err := s.d.Door.Subject(ctx, s.d.DB, s.requesterUse(), subjectID)
	if err != nil {
		return "", err
	}
	cat, err := s.needCategory(FieldRequest)
	if err != nil {
		return "", err
	}
	id := store.NewID("r_")
	now := s.now()
	title, err := v.SealItem(ctx, cat, id, []byte(d.Title))
	if err != nil {
		return "", err
	}
	stored, err := s.storeFiles(ctx, v, id, FileAttachment, in.files, time.Time{})
	if err != nil {
		return "", err
	}
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO support_requests (`+requestCols+`, policy_version) VALUES ($1, $2, $3, $4, $5, '', $6, $6, NULL, $7)`,
			id, v.ID(), title, channel, StatusOpen, now, s.d.Policy.Number()); err != nil {
			return err
		}
		return s.insertMessage(ctx, tx, v, id, "in", in.channel, "", d.Text, in, stored, now)
	})
	if err != nil {
		s.dropFiles(context.WithoutCancel(ctx), v.ID(), id, stored)
		return "", fmt.Errorf("support: open request: %w", err)
	}
	return id, nil
}

// insertMessage seals and stores one exchange with its stored files.
func (s *Service) insertMessage(ctx context.Context, tx *sql.Tx, v *door.View, requestID, direction, channel, staffID, text string,
	in inbound, files []fileRow, now time.Time) error {
	cat, err := s.needCategory(FieldMessage)
	if err != nil {
		return err
	}
	body, err := v.SealItem(ctx, cat, requestID, []byte(text))
	if err != nil {
		return err
	}
	msgID := store.NewID("m_")
	if _, err := tx.ExecContext(ctx, `INSERT INTO support_messages (id, request_id, subject_id, direction, channel, staff_id, body_sealed, spf, dkim, dmarc, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, msgID, requestID, v.ID(), direction, channel, staffID, body,
		in.spf, in.dkim, in.dmarc, now); err != nil {
		return err
	}
	for _, f := range files {
		if _, err := tx.ExecContext(ctx, `INSERT INTO support_files (`+fileCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			f.id, requestID, msgID, v.ID(), f.kind, f.name, f.mime, f.size, f.blob, nullTime(f.notice), now); err != nil {
			return err
		}
	}
	return nil
}

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

// Reply adds the member's exchange to their request; a closed request
// opens again.
func (s *Service) Reply(ctx context.Context, memberID, requestID, text string, files []Upload) (Thread, error) {
	r, err := s.owned(ctx, s.d.DB, memberID, requestID)
	if err != nil {
		return Thread{}, err
	}
	if err := s.addFromRequester(ctx, r, text, inbound{channel: ChannelWeb, files: files}); err != nil {
		return Thread{}, err
	}
	return s.ThreadFor(ctx, memberID, requestID)
}

// addFromRequester stores an exchange from the requester of r.
func (s *Service) addFromRequester(ctx context.Context, r requestRow, text string, in inbound) error {
	text, err := checkText("text", text, s.lim.MaxText, len(in.files) == 0)
	if err != nil {
		return err
	}
	if len(in.files) > s.lim.MaxFiles {
		return fault.FieldError("files", "at most %d files at once", s.lim.MaxFiles)
	}
	v, err := s.d.Door.Subject(ctx, s.d.DB, s.requesterUse(), r.subject)
	if err != nil {
		return err
	}
	stored, err := s.storeFiles(ctx, v, r.id, FileAttachment, in.files, time.Time{})
	if err != nil {
		return err
	}
	now := s.now()
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertMessage(ctx, tx, v, r.id, "in", in.channel, "", text, in, stored, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE support_requests SET status = 'open', updated_at = $2, closed_at = NULL WHERE id = $1`, r.id, now)
		return err
	})
	if err != nil {
		s.dropFiles(context.WithoutCancel(ctx), v.ID(), r.id, stored)
		return fmt.Errorf("support: reply: %w", err)
	}
	return nil
}

// Mine lists the member's requests, newest first.
func (s *Service) Mine(ctx context.Context, memberID string) ([]Request, error) {
	ids, err := s.d.Subjects.MergedFrom(ctx, s.d.DB, memberID)
	if err != nil {
		return nil, err
	}
	ids = append([]string{memberID}, ids...)
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+requestCols+` FROM support_requests WHERE subject_id IN (`+store.Placeholders(len(ids), 1)+`)
ORDER BY updated_at DESC, id`, store.Args(ids)...)
	if err != nil {
		return nil, fmt.Errorf("support: list: %w", err)
	}
	rs, err := scanRequests(rows)
	if err != nil {
		return nil, err
	}
	v, err := s.d.Door.Subject(ctx, s.d.DB, door.Subject(), memberID)
	if err != nil {
		return nil, err
	}
	cat := s.category(FieldRequest)
	out := make([]Request, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.public(s.openTitle(ctx, v, cat, r)))
	}
	return out, nil
}

// openTitle opens a request's title through v ("" when it cannot be).
func (s *Service) openTitle(ctx context.Context, v *door.View, cat string, r requestRow) string {
	if cat == "" || r.title == nil {
		return ""
	}
	b, err := v.OpenItem(ctx, cat, r.id, r.title)
	if err != nil {
		return ""
	}
	return string(b)
}

func scanRequests(rows *sql.Rows) ([]requestRow, error) {
	defer rows.Close()
	var out []requestRow
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ThreadFor is the member's own request with its exchanges, opened for
// their own request.
func (s *Service) ThreadFor(ctx context.Context, memberID, requestID string) (Thread, error) {
	r, err := s.owned(ctx, s.d.DB, memberID, requestID)
	if err != nil {
		return Thread{}, err
	}
	v, err := s.d.Door.Subject(ctx, s.d.DB, door.Subject(), r.subject)
	if err != nil {
		return Thread{}, err
	}
	return s.thread(ctx, v, r, true)
}

// thread reads r's exchanges and files through v. withRecordings false
// leaves out the recordings of calls, for a reader whose purpose does
// not reach them.
func (s *Service) thread(ctx context.Context, v *door.View, r requestRow, withRecordings bool) (Thread, error) {
	cat := s.category(FieldRequest)
	title, err := v.OpenItem(ctx, cat, r.id, r.title)
	if err != nil {
		return Thread{}, err
	}
	t := Thread{Request: r.public(string(title))}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT id, direction, channel, staff_id, body_sealed, spf, dkim, dmarc, created_at
FROM support_messages WHERE request_id = $1 ORDER BY created_at, id`, r.id)
	if err != nil {
		return Thread{}, fmt.Errorf("support: read thread: %w", err)
	}
	defer rows.Close()
	msgCat := s.category(FieldMessage)
	byID := map[string]int{}
	for rows.Next() {
		var m Message
		var body []byte
		if err := rows.Scan(&m.ID, &m.Direction, &m.Channel, &m.Staff, &body, &m.SPF, &m.DKIM, &m.DMARC, &m.CreatedAt); err != nil {
			return Thread{}, err
		}
		text, err := v.OpenItem(ctx, msgCat, r.id, body)
		if err != nil {
			return Thread{}, err
		}
		m.Text, m.CreatedAt = string(text), m.CreatedAt.UTC()
		byID[m.ID] = len(t.Messages)
		t.Messages = append(t.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return Thread{}, err
	}
	files, err := s.filesOf(ctx, s.d.DB, `request_id = $1`, r.id)
	if err != nil {
		return Thread{}, err
	}
	for _, f := range files {
		if f.kind == FileRecording && !withRecordings {
			continue
		}
		pub, err := s.openFile(ctx, v, f)
		if err != nil {
			return Thread{}, err
		}
		if i, ok := byID[f.message]; ok {
			t.Messages[i].Files = append(t.Messages[i].Files, pub)
		}
	}
	return t, nil
}

// QueueRow is a request in the staff queue.
type QueueRow struct {
	Request
}

// QueueFilter narrows the staff queue.
type QueueFilter struct {
	Status   string // "" for every status but closed
	Assignee string // a staff id, or "none"
	// After is the cursor of the previous page ("" for the first).
	After string
	Limit int
}

// Queue lists requests for staff, the longest waiting first, a page at a
// time, with their titles opened for the role's purpose. It reads one page
// of rows and opens only their titles, so it stays fast however many
// requests there are.
func (s *Service) Queue(ctx context.Context, st Staff, f QueueFilter) ([]Request, string, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	where, args := []string{}, []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	switch f.Status {
	case "":
		where = append(where, `status <> 'closed'`)
	case StatusOpen, StatusAnswered, StatusClosed:
		where = append(where, `status = `+arg(f.Status))
	default:
		return nil, "", fault.FieldError("status", "must be open, answered or closed")
	}
	switch f.Assignee {
	case "":
	case "none":
		where = append(where, `assignee = ''`)
	default:
		where = append(where, `assignee = `+arg(f.Assignee))
	}
	if f.After != "" {
		at, id, ok := parseCursor(f.After)
		if !ok {
			return nil, "", fault.FieldError("after", "is not a cursor this list gave")
		}
		where = append(where, `(updated_at > `+arg(at)+` OR (updated_at = `+arg(at)+` AND id > `+arg(id)+`))`)
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+requestCols+` FROM support_requests WHERE `+strings.Join(where, " AND ")+
		` ORDER BY updated_at, id LIMIT `+arg(f.Limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("support: queue: %w", err)
	}
	rs, err := scanRequests(rows)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rs) > f.Limit {
		rs = rs[:f.Limit]
		last := rs[len(rs)-1]
		next = last.updated.UTC().Format(time.RFC3339Nano) + "~" + last.id
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.subject
	}
	out := make([]Request, 0, len(rs))
	if len(rs) == 0 {
		return out, next, nil
	}
	b, err := s.d.Door.Subjects(ctx, s.d.DB, s.staffUse(st), ids)
	if err != nil {
		return nil, "", err
	}
	cat := s.category(FieldRequest)
	for _, r := range rs {
		title := ""
		if v, err := b.View(r.subject); err == nil {
			title = s.openTitle(ctx, v, cat, r)
		}
		out = append(out, r.public(title))
	}
	return out, next, nil
}

func parseCursor(c string) (time.Time, string, bool) {
	at, id, ok := strings.Cut(c, "~")
	if !ok {
		return time.Time{}, "", false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	return t.UTC(), id, err == nil && id != ""
}

// StaffThread is a request with its exchanges for a staff member, read for
// the purpose their role holds that uses support records (a role holding
// none is refused, and the refusal audited, by the door). Every read is
// audited.
func (s *Service) StaffThread(ctx context.Context, st Staff, requestID string) (Thread, error) {
	r, err := s.load(ctx, s.d.DB, requestID)
	if err != nil {
		return Thread{}, err
	}
	u := s.staffUse(st)
	v, err := s.d.Door.Subject(ctx, s.d.DB, u, r.subject)
	if err != nil {
		return Thread{}, err
	}
	withRecordings := s.category(FieldRecording) != "" && v.AllowedCategory(ctx, s.category(FieldRecording)) == nil
	t, err := s.thread(ctx, v, r, withRecordings)
	if err != nil {
		return Thread{}, err
	}
	err = s.audit(ctx, s.d.DB, audit.Event{Actor: u.Actor, Action: "support.read", Subject: r.subject,
		Detail: map[string]string{"request": r.id, "purpose": u.Purpose, "role": st.Role}})
	return t, err
}

// Person is what staff may see of a requester.
type Person struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Requester reads who opened a request — their name and address — for a
// staff member's purpose. A role whose purposes do not reach the
// requester's identity (a quality reviewer's) is refused, and the refusal
// audited, by the door.
func (s *Service) Requester(ctx context.Context, st Staff, requestID string) (Person, error) {
	r, err := s.load(ctx, s.d.DB, requestID)
	if err != nil {
		return Person{}, err
	}
	u := s.staffUse(st)
	b, err := s.d.Door.Subjects(ctx, s.d.DB, u, []string{r.subject})
	if err != nil {
		return Person{}, err
	}
	v, err := b.View(r.subject)
	if err != nil {
		return Person{}, err
	}
	if err := v.Allowed(ctx, "email"); err != nil {
		return Person{}, err
	}
	var p Person
	if p.Email, err = s.d.Subjects.Email(ctx, s.d.DB, v); err != nil {
		return Person{}, err
	}
	ns, err := s.d.Names.DisplayNames(ctx, b, []string{r.subject})
	if err != nil {
		return Person{}, err
	}
	p.Name = ns[r.subject]
	err = s.audit(ctx, s.d.DB, audit.Event{Actor: u.Actor, Action: "support.requester_read", Subject: r.subject,
		Detail: map[string]string{"request": r.id, "purpose": u.Purpose, "role": st.Role}})
	return p, err
}

// Answer stores a staff member's answer and mails it to the requester,
// from the desk's signed reply address so a reply threads back here.
func (s *Service) Answer(ctx context.Context, st Staff, requestID, text string, files []Upload) (Thread, error) {
	text, err := checkText("text", text, s.lim.MaxText, true)
	if err != nil {
		return Thread{}, err
	}
	if len(files) > s.lim.MaxFiles {
		return Thread{}, fault.FieldError("files", "at most %d files at once", s.lim.MaxFiles)
	}
	r, err := s.load(ctx, s.d.DB, requestID)
	if err != nil {
		return Thread{}, err
	}
	u := s.staffUse(st)
	v, err := s.d.Door.Subject(ctx, s.d.DB, u, r.subject)
	if err != nil {
		return Thread{}, err
	}
	stored, err := s.storeFiles(ctx, v, r.id, FileAttachment, files, time.Time{})
	if err != nil {
		return Thread{}, err
	}
	now := s.now()
	title := s.openTitle(ctx, v, s.category(FieldRequest), r)
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertMessage(ctx, tx, v, r.id, "out", ChannelMail, st.ID, text, inbound{}, stored, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE support_requests SET status = 'answered', updated_at = $2,
assignee = CASE WHEN assignee = '' THEN $3 ELSE assignee END WHERE id = $1`, r.id, now, st.ID); err != nil {
			return err
		}
		if err := s.mailAnswer(ctx, tx, v, r, title, text, len(stored)); err != nil {
			return err
		}
		return s.audit(ctx, tx, audit.Event{Actor: u.Actor, Action: "support.answered", Subject: r.subject,
			Detail: map[string]string{"request": r.id, "purpose": u.Purpose}})
	})
	if err != nil {
		s.dropFiles(context.WithoutCancel(ctx), v.ID(), r.id, stored)
		return Thread{}, fmt.Errorf("support: answer: %w", err)
	}
	return s.StaffThread(ctx, st, requestID)
}

// Recording is a recorded call staff attach to a request.
type Recording struct {
	// Notes are staff's notes of the call (optional).
	Notes string
	// NoticeGivenAt is when the caller was told the call is recorded;
	// required: a recording without the caller's notice is refused.
	NoticeGivenAt time.Time
	Upload
}

// AddRecording attaches a recorded call to a request, as an exchange from
// the requester by phone. The file must be audio.
func (s *Service) AddRecording(ctx context.Context, st Staff, requestID string, rec Recording) (Thread, error) {
	if _, err := s.needCategory(FieldRecording); err != nil {
		return Thread{}, err
	}
	if rec.NoticeGivenAt.IsZero() {
		return Thread{}, fault.FieldError("notice_given_at", "say when the caller was told the call is recorded: a recording without that notice is not kept")
	}
	if rec.NoticeGivenAt.After(s.now().Add(time.Minute)) {
		return Thread{}, fault.FieldError("notice_given_at", "must not be in the future")
	}
	notes, err := checkText("notes", rec.Notes, s.lim.MaxText, false)
	if err != nil {
		return Thread{}, err
	}
	r, err := s.load(ctx, s.d.DB, requestID)
	if err != nil {
		return Thread{}, err
	}
	u := s.staffUse(st)
	v, err := s.d.Door.Subject(ctx, s.d.DB, u, r.subject)
	if err != nil {
		return Thread{}, err
	}
	stored, err := s.storeFiles(ctx, v, r.id, FileRecording, []Upload{rec.Upload}, rec.NoticeGivenAt.UTC())
	if err != nil {
		return Thread{}, err
	}
	now := s.now()
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertMessage(ctx, tx, v, r.id, "in", ChannelPhone, st.ID, notes, inbound{}, stored, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE support_requests SET updated_at = $2 WHERE id = $1`, r.id, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, audit.Event{Actor: u.Actor, Action: "support.call_recorded", Subject: r.subject,
			Detail: map[string]string{"request": r.id, "notice_given_at": rec.NoticeGivenAt.UTC().Format(time.RFC3339)}})
	})
	if err != nil {
		s.dropFiles(context.WithoutCancel(ctx), v.ID(), r.id, stored)
		return Thread{}, fmt.Errorf("support: record call: %w", err)
	}
	return s.StaffThread(ctx, st, requestID)
}

// OpenByPhone opens a request for a caller, found (or made, for someone
// without an account) by the address they give, with staff's notes.
func (s *Service) OpenByPhone(ctx context.Context, st Staff, email, title, notes string) (string, error) {
	if !s.Enabled() {
		return "", fault.New(fault.Invalid, "this site keeps no support records (the privacy policy declares none)")
	}
	d, err := s.draft(title, notes, nil)
	if err != nil {
		return "", err
	}
	sub, _, err := s.d.Subjects.EnsureByEmail(ctx, s.d.DB, s.d.Door, s.staffUse(st), email, "support", s.d.Policy.Number())
	if err != nil {
		return "", err
	}
	if sub.Erased() {
		return "", fault.New(fault.Conflict, "this person's data was erased; a new request needs a new address")
	}
	id, err := s.create(ctx, sub.ID, ChannelPhone, d, inbound{channel: ChannelPhone})
	if err != nil {
		return "", err
	}
	return id, s.audit(ctx, s.d.DB, audit.Event{Actor: "staff:" + st.ID, Action: "support.opened_by_phone", Subject: sub.ID,
		Detail: map[string]string{"request": id}})
}

// Assign gives a request to a staff member ("" to nobody).
func (s *Service) Assign(ctx context.Context, st Staff, requestID, staffID string) error {
	return s.update(ctx, st, requestID, "support.assigned", `assignee = $2`, staffID)
}

// SetStatus opens, marks answered or closes a request.
func (s *Service) SetStatus(ctx context.Context, st Staff, requestID, status string) error {
	switch status {
	case StatusOpen, StatusAnswered:
		return s.update(ctx, st, requestID, "support.status", `status = $2, closed_at = NULL`, status)
	case StatusClosed:
		return s.update(ctx, st, requestID, "support.status", `status = $2, closed_at = $3`, status)
	}
	return fault.FieldError("status", "must be open, answered or closed")
}

func (s *Service) update(ctx context.Context, st Staff, requestID, action, set string, value string) error {
	r, err := s.load(ctx, s.d.DB, requestID)
	if err != nil {
		return err
	}
	now := s.now()
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		args := []any{requestID, value}
		if strings.Contains(set, "$3") {
			args = append(args, now)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE support_requests SET `+set+`, updated_at = $`+fmt.Sprint(len(args)+1)+` WHERE id = $1`,
			append(args, now)...); err != nil {
			return fmt.Errorf("support: update request: %w", err)
		}
		return s.audit(ctx, tx, audit.Event{Actor: "staff:" + st.ID, Action: action, Subject: r.subject,
			Detail: map[string]string{"request": r.id, "value": value}})
	})
}
