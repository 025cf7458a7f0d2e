package web

// The support desk over the API: a member's requests and their exchanges,
// a request from someone without an account, and the staff desk's queue,
// threads, answers and recorded calls.

import (
	"bufio"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"steward/internal/fault"
	"steward/internal/support"
)

// supportStaff is the staff member acting, in their role: the desk reads a
// request for the purpose that role holds, and the door refuses a role
// whose purposes do not reach what is asked.
func supportStaff(a auth) support.Staff {
	return support.Staff{ID: a.P.Account.SubjectID, Role: a.P.Account.Role}
}

// supportForm is what a support form sent: its text fields, and its files,
// each spooled (encrypted) while the rest of the form was read. close
// releases the spools.
type supportForm struct {
	values map[string]string
	files  []support.Upload
}

func (f *supportForm) get(name string) string { return f.values[name] }

func (f *supportForm) close() {
	for _, u := range f.files {
		u.Close()
	}
}

// maxFormParts bounds the parts of a multipart form, empty file inputs
// included, so a body of endless tiny parts is refused early.
const maxFormParts = 100

// readSupportForm reads a form of the desk: JSON (each field a string),
// urlencoded, or multipart/form-data with files under fileField.
// Multipart parts are read in order with r.MultipartReader: text fields
// bounded by the general body limit, each file handed to the desk's
// spool, which encrypts it on disk (ParseMultipartForm would write it
// there in the clear). The routes of these forms skip the general body
// limit (isUpload): what is not a file is held to it here.
func (s *server) readSupportForm(w http.ResponseWriter, r *http.Request, fileField string, recording bool, fields ...string) (*supportForm, error) {
	f := &supportForm{values: map[string]string{}}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		if err := s.readMultipart(r, f, fileField, recording, fields); err != nil {
			f.close()
			if fault.Is(err, fault.TooLarge) {
				w.Header().Set("Connection", "close") // the rest of the body is not read
			}
			return nil, err
		}
		return f, nil
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		if err := parseForm(r); err != nil {
			return nil, err
		}
		for _, name := range fields {
			f.values[name] = r.PostForm.Get(name)
		}
		return f, nil
	case "application/json":
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		var m map[string]string
		if err := decode(r, &m); err != nil {
			return nil, err
		}
		for name, v := range m {
			if !slices.Contains(fields, name) {
				return nil, badRequest(name, "unknown field "+name, nil)
			}
			f.values[name] = v
		}
		return f, nil
	}
	return nil, fault.New(fault.Unsupported, "send the body as application/json, or as multipart/form-data with files")
}

// readMultipart reads a multipart form's parts into f, at most
// maxFormParts of them; a file input left empty is skipped.
func (s *server) readMultipart(r *http.Request, f *supportForm, fileField string, recording bool, fields []string) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return badRequest("", "the form could not be read", err)
	}
	// The desk takes as many files with an exchange as with a mail: no
	// more are spooled than it would keep.
	maxFiles := s.d.Support.MailLimits("").MaxAttachments
	if recording {
		maxFiles = 1
	}
	textLeft := s.maxBody
	for range maxFormParts {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return badRequest("", "the form could not be read", err)
		}
		name := p.FormName()
		if name != fileField {
			if p.FileName() != "" {
				return badRequest(name, "files go in the field "+fileField, nil)
			}
			b, err := io.ReadAll(io.LimitReader(p, textLeft+1))
			if err != nil {
				return badRequest(name, "the form could not be read", err)
			}
			if int64(len(b)) > textLeft {
				return fault.New(fault.TooLarge, "the form's text is larger than %d bytes", s.maxBody)
			}
			textLeft -= int64(len(b))
			if !slices.Contains(fields, name) {
				continue // a button's name, say: forms carry what pages add
			}
			if _, twice := f.values[name]; twice {
				return badRequest(name, name+" is given twice", nil)
			}
			f.values[name] = string(b)
			continue
		}
		body := bufio.NewReader(p)
		if _, err := body.Peek(1); errors.Is(err, io.EOF) {
			continue // a file input left empty
		} else if err != nil {
			return badRequest(name, "the form could not be read", err)
		}
		if len(f.files) == maxFiles {
			if recording {
				return badRequest(name, "send one recording at a time", nil)
			}
			return fault.FieldError(name, "at most %d files at once", maxFiles)
		}
		up, err := s.d.Support.Spool(p.FileName(), body, recording)
		if err != nil {
			return err
		}
		f.files = append(f.files, up)
	}
	return badRequest("", "the form has more than "+strconv.Itoa(maxFormParts)+" parts", nil)
}

// noticeTime reads when a caller was told their call is recorded: RFC
// 3339, or what a browser's datetime-local input sends (no zone: UTC, as
// the form says).
func noticeTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, badRequest("notice_given_at",
			"say when the caller was told the call is recorded: a recording without that notice is not kept", nil)
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badRequest("notice_given_at", "notice_given_at must be a date and time: RFC 3339, or YYYY-MM-DDTHH:MM in UTC", nil)
}

// sendSupportFile sends an attachment or a recording as a download of the
// type found from its bytes when it was stored: never sniffed, never run,
// never shown inline.
func (s *server) sendSupportFile(w http.ResponseWriter, r *http.Request, rd support.Reader) error {
	rc, f, err := s.d.Support.OpenFile(r.Context(), rd, r.PathValue("id"))
	if err != nil {
		return err
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", f.Mime)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Content-Disposition", attachmentDisposition(f.Name, f.ID))
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("support: a file stopped while it was sent", "file", f.ID, "err", err)
	}
	return nil
}

// attachmentDisposition names a download after the name its sender gave,
// kept to printable characters without path or quote (RFC 2231 encodes
// what is not ASCII), or after its id when nothing of the name is left.
func attachmentDisposition(name, id string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return -1
		case r == '"' || r == '\\' || r == '/' || r == ';' || r == '%':
			return '_'
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	name = strings.Trim(name, ". ")
	if name == "" {
		name = id
	}
	if d := mime.FormatMediaType("attachment", map[string]string{"filename": name}); d != "" {
		return d
	}
	return mime.FormatMediaType("attachment", map[string]string{"filename": id})
}

// The member's side.

func (s *server) handleMySupport() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		list, err := s.d.Support.Mine(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"items": list})
	}
}

func (s *server) handleOpenSupport() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.readSupportForm(w, r, "files", false, "title", "text")
		if err != nil {
			return err
		}
		defer f.close()
		t, err := s.d.Support.Open(r.Context(), a.P.Account.SubjectID, f.get("title"), f.get("text"), f.files)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, t)
	}
}

func (s *server) handleMySupportThread() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		t, err := s.d.Support.ThreadFor(r.Context(), a.P.Account.SubjectID, r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, t)
	}
}

func (s *server) handleSupportReply() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.readSupportForm(w, r, "files", false, "text")
		if err != nil {
			return err
		}
		defer f.close()
		t, err := s.d.Support.Reply(r.Context(), a.P.Account.SubjectID, r.PathValue("id"), f.get("text"), f.files)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, t)
	}
}

func (s *server) handleMySupportFile() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.sendSupportFile(w, r, support.Reader{Member: a.P.Account.SubjectID})
	}
}

// supportPublicInput is a request from someone not signed in.
type supportPublicInput struct {
	Email string `json:"email"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// msgSupportHeld answers every request from someone not signed in: the
// same for every address, known or not.
const msgSupportHeld = "Check your inbox: your request reaches our support team once you follow the link we sent to the address you gave."

// handlePublicSupport takes a request with an address alone; it is held
// until the link mailed to the address is followed.
func (s *server) handlePublicSupport() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in supportPublicInput
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Support.Submit(r.Context(), in.Email, in.Title, in.Text, infoOf(r).client.IP); err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, map[string]string{"status": "accepted", "message": msgSupportHeld})
	}
}

// The staff desk.

// supportQueueJSON is a page of the staff queue and the cursor of the next
// ("" on the last page).
type supportQueueJSON struct {
	Items []support.Request `json:"items"`
	Next  string            `json:"next,omitempty"`
}

// supportQueue reads a page of the queue as the query asks for it, and
// audits the view: it shows requests' titles.
func (s *server) supportQueue(r *http.Request, a auth) (supportQueueJSON, error) {
	q := r.URL.Query()
	f := support.QueueFilter{Status: q.Get("status"), Assignee: q.Get("assignee"), After: q.Get("after")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			return supportQueueJSON{}, badRequest("limit", "limit must be a number from 1 to 200", err)
		}
		f.Limit = n
	}
	items, next, err := s.d.Support.Queue(r.Context(), supportStaff(a), f)
	if err != nil {
		return supportQueueJSON{}, err
	}
	if err := s.recordStaffRead(r, a, "", map[string]string{"view": "support.queue", "count": strconv.Itoa(len(items))}); err != nil {
		return supportQueueJSON{}, err
	}
	return supportQueueJSON{Items: items, Next: next}, nil
}

func (s *server) handleSupportQueue() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		q, err := s.supportQueue(r, a)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, q)
	}
}

func (s *server) handleStaffSupportThread() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		t, err := s.d.Support.StaffThread(r.Context(), supportStaff(a), r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, t)
	}
}

// handleSupportRequester reads who opened a request. A role whose purposes
// do not reach the requester's identity (a quality reviewer's) is refused
// by the door, which audits the refusal.
func (s *server) handleSupportRequester() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		p, err := s.d.Support.Requester(r.Context(), supportStaff(a), r.PathValue("id"))
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, p)
	}
}

func (s *server) handleSupportAnswer() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.readSupportForm(w, r, "files", false, "text")
		if err != nil {
			return err
		}
		defer f.close()
		t, err := s.d.Support.Answer(r.Context(), supportStaff(a), r.PathValue("id"), f.get("text"), f.files)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, t)
	}
}

// recordingFrom reads a recorded call from its form: the notice time is
// required, and the one file.
func recordingFrom(f *supportForm) (support.Recording, error) {
	at, err := noticeTime(f.get("notice_given_at"))
	if err != nil {
		return support.Recording{}, err
	}
	if len(f.files) == 0 {
		return support.Recording{}, badRequest("recording", "attach the recording (an audio file)", nil)
	}
	return support.Recording{Notes: f.get("notes"), NoticeGivenAt: at, Upload: f.files[0]}, nil
}

func (s *server) handleSupportRecording() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		f, err := s.readSupportForm(w, r, "recording", true, "notes", "notice_given_at")
		if err != nil {
			return err
		}
		defer f.close()
		rec, err := recordingFrom(f)
		if err != nil {
			return err
		}
		t, err := s.d.Support.AddRecording(r.Context(), supportStaff(a), r.PathValue("id"), rec)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusCreated, t)
	}
}

type supportStatusInput struct {
	Status string `json:"status"`
}

func (s *server) handleSupportStatus() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in supportStatusInput
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Support.SetStatus(r.Context(), supportStaff(a), r.PathValue("id"), in.Status); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

type supportAssignInput struct {
	Assignee string `json:"assignee"`
}

func (s *server) handleSupportAssign() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in supportAssignInput
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Support.Assign(r.Context(), supportStaff(a), r.PathValue("id"), strings.TrimSpace(in.Assignee)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// phoneFields names the desk's fields as a phone request calls them: the
// notes of the call are the request's first text.
var phoneFields = map[string]string{"text": "notes"}

// supportPhoneInput opens a request for a caller.
type supportPhoneInput struct {
	Email string `json:"email"`
	Title string `json:"title"`
	Notes string `json:"notes"`
}

func (s *server) handleSupportPhone() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in supportPhoneInput
		if err := decode(r, &in); err != nil {
			return err
		}
		id, err := s.d.Support.OpenByPhone(r.Context(), supportStaff(a), in.Email, in.Title, in.Notes)
		if err != nil {
			return renameField(err, phoneFields)
		}
		return s.encode(w, http.StatusCreated, map[string]string{"id": id})
	}
}

func (s *server) handleStaffSupportFile() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		st := supportStaff(a)
		return s.sendSupportFile(w, r, support.Reader{Staff: &st})
	}
}
