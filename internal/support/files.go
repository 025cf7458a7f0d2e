package support

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"

	"steward/internal/audit"
	"steward/internal/blob"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/store"
)

// fileRow is a file as stored.
type fileRow struct {
	id, request, message, subject, kind, mime, blob string
	name                                            []byte
	size                                            int64
	notice                                          time.Time
	created                                         time.Time
}

const fileCols = `id, request_id, message_id, subject_id, kind, name_sealed, mime, size, blob, notice_given_at, created_at`

func (s *Service) filesOf(ctx context.Context, q store.Q, where string, args ...any) ([]fileRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+fileCols+` FROM support_files WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("support: read files: %w", err)
	}
	defer rows.Close()
	var out []fileRow
	for rows.Next() {
		var f fileRow
		var notice sql.NullTime
		if err := rows.Scan(&f.id, &f.request, &f.message, &f.subject, &f.kind, &f.name, &f.mime, &f.size, &f.blob, &notice, &f.created); err != nil {
			return nil, err
		}
		f.notice, f.created = notice.Time.UTC(), f.created.UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}

// fieldOf is the policy field a kind of file is.
func fieldOf(kind string) string {
	if kind == FileRecording {
		return FieldRecording
	}
	return FieldMessage
}

// openFile is a file's public form, its name opened through v.
func (s *Service) openFile(ctx context.Context, v *door.View, f fileRow) (File, error) {
	name, err := v.OpenItem(ctx, s.category(fieldOf(f.kind)), f.request, f.name)
	if err != nil {
		return File{}, err
	}
	return File{ID: f.id, Kind: f.kind, Name: string(name), Mime: f.mime, Size: f.size, NoticeAt: f.notice, CreatedAt: f.created}, nil
}

// blobKey is where a file of a request is stored.
func blobKey(subjectID, requestID, fileID string) string {
	return "support/" + strings.ToLower(subjectID) + "/" + requestID + "/" + fileID
}

// cleanName keeps the name a file was given, for showing and the
// requester's export only (it is sealed, and never used as a path).
func cleanName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	for len(name) > 200 {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	if name == "" || name == "." || name == ".." {
		name = "attachment"
	}
	return name
}

func (s *Service) spoolDir() string {
	if s.d.SpoolDir != "" {
		return s.d.SpoolDir
	}
	return os.TempDir()
}

// audioTypes are the recordings accepted, by the type their bytes show.
var audioTypes = []string{"audio/mpeg", "audio/wav", "audio/x-wav", "audio/ogg", "audio/opus", "audio/flac", "audio/x-flac",
	"audio/mp4", "audio/x-m4a", "audio/webm", "audio/aac", "audio/amr", "video/webm", "audio/aiff"}

// storeFiles spools each upload (encrypted), checks it, and stores it in
// blob storage sealed under the request's key. A refusal or an error
// leaves nothing stored. notice is a recording's notice time.
func (s *Service) storeFiles(ctx context.Context, v *door.View, requestID, kind string, ups []Upload, notice time.Time) ([]fileRow, error) {
	cat, err := s.needCategory(fieldOf(kind))
	if err != nil {
		return nil, err
	}
	limit := s.lim.MaxFile
	if kind == FileRecording {
		limit = s.lim.MaxRecording
	}
	var out []fileRow
	for _, up := range ups {
		f, err := s.storeFile(ctx, v, cat, requestID, kind, up, limit)
		if err != nil {
			s.dropFiles(context.WithoutCancel(ctx), v.ID(), requestID, out)
			return nil, err
		}
		f.notice = notice
		out = append(out, f)
	}
	return out, nil
}

// Spool reads one upload (a part of a form) into an encrypted temporary
// file, so that a form's next part can be read before the upload is
// stored. Close the upload when done with it.
func (s *Service) Spool(name string, r io.Reader, recording bool) (Upload, error) {
	limit := s.lim.MaxFile
	if recording {
		limit = s.lim.MaxRecording
	}
	sp, err := s.spool(r, limit)
	if err != nil {
		return Upload{}, err
	}
	return Upload{Name: name, Body: spooled{sp.Reader(), sp}}, nil
}

// spooled is an upload already in a spool.
type spooled struct {
	io.Reader
	sp *door.Spool
}

// Close releases a spooled upload.
func (u Upload) Close() error {
	if sp, ok := u.Body.(spooled); ok {
		return sp.sp.Close()
	}
	return nil
}

func (s *Service) spool(r io.Reader, limit int64) (*door.Spool, error) {
	sp, err := door.NewSpool(s.spoolDir(), r, limit)
	if err != nil && fault.CodeOf(err) == fault.TooLarge {
		return nil, fault.New(fault.TooLarge, "a file may be at most %d MB", limit>>20)
	}
	return sp, err
}

func (s *Service) storeFile(ctx context.Context, v *door.View, cat, requestID, kind string, up Upload, limit int64) (fileRow, error) {
	var sp *door.Spool
	if sd, ok := up.Body.(spooled); ok && sd.sp.Size() <= limit {
		sp = sd.sp
	} else {
		var err error
		if sp, err = s.spool(up.Body, limit); err != nil {
			return fileRow{}, err
		}
		defer sp.Close()
	}
	if sp.Size() == 0 {
		return fileRow{}, fault.FieldError("files", "a file is empty")
	}
	mt, err := mimetype.DetectReader(sp.Reader())
	if err != nil {
		return fileRow{}, fmt.Errorf("support: detect a file's type: %w", err)
	}
	mime := mt.String()
	if i := strings.IndexByte(mime, ';'); i >= 0 {
		mime = mime[:i]
	}
	if kind == FileRecording && !containsString(audioTypes, mime) {
		return fileRow{}, fault.New(fault.Unsupported, "a call recording must be an audio file (MP3, WAV, Ogg, FLAC, M4A or WebM); this is %s", mime)
	}
	// An archive of archives (a zip of zips, built to exhaust whoever
	// unpacks it) is refused, as in mail.
	if err := mail.CheckArchive(sp, mt); err != nil {
		return fileRow{}, err
	}
	f := fileRow{id: store.NewID("f_"), request: requestID, subject: v.ID(), kind: kind, mime: mime, size: sp.Size()}
	f.blob = blobKey(f.subject, requestID, f.id)
	if f.name, err = v.SealItem(ctx, cat, requestID, []byte(cleanName(up.Name))); err != nil {
		return fileRow{}, err
	}
	err = blob.Write(ctx, s.d.Blobs, f.blob, func(w io.Writer) error {
		sealer, err := v.SealStream(ctx, cat, requestID, w)
		if err != nil {
			return err
		}
		if _, err := io.Copy(sealer, sp.Reader()); err != nil {
			return err
		}
		return sealer.Close()
	})
	if err != nil {
		return fileRow{}, err
	}
	return f, nil
}

// dropFiles removes stored files whose rows never went in.
func (s *Service) dropFiles(ctx context.Context, subjectID, requestID string, fs []fileRow) {
	for _, f := range fs {
		if err := s.d.Blobs.Delete(ctx, f.blob); err != nil {
			s.d.Log.Warn("support: a file of a failed exchange was not removed", "blob", f.blob, "err", err)
		}
	}
}

// Reader is who opens a file: the requester (Member set) or staff.
type Reader struct {
	Member string
	Staff  *Staff
}

// OpenFile opens an attachment or a recording for its requester, or for
// staff whose role's purpose reaches it (a recording needs a purpose that
// uses recordings). Every staff read is audited.
func (s *Service) OpenFile(ctx context.Context, rd Reader, fileID string) (io.ReadCloser, File, error) {
	fs, err := s.filesOf(ctx, s.d.DB, `id = $1`, fileID)
	notFound := fault.New(fault.NotFound, "no such file")
	if err != nil {
		return nil, File{}, err
	}
	if len(fs) == 0 {
		return nil, File{}, notFound
	}
	f := fs[0]
	var v *door.View
	switch {
	case rd.Staff != nil:
		u := s.staffUse(*rd.Staff)
		if v, err = s.d.Door.Subject(ctx, s.d.DB, u, f.subject); err != nil {
			return nil, File{}, err
		}
		if err := s.audit(ctx, s.d.DB, auditFileRead(u, f)); err != nil {
			return nil, File{}, err
		}
	default:
		if _, err := s.owned(ctx, s.d.DB, rd.Member, f.request); err != nil {
			return nil, File{}, notFound
		}
		if v, err = s.d.Door.Subject(ctx, s.d.DB, door.Subject(), f.subject); err != nil {
			return nil, File{}, err
		}
	}
	return s.open(ctx, v, f)
}

func (s *Service) open(ctx context.Context, v *door.View, f fileRow) (io.ReadCloser, File, error) {
	pub, err := s.openFile(ctx, v, f)
	if err != nil {
		return nil, File{}, err
	}
	rc, err := s.d.Blobs.Get(ctx, f.blob)
	if err != nil {
		return nil, File{}, err
	}
	plain, err := v.OpenStream(ctx, s.category(fieldOf(f.kind)), f.request, rc)
	if err != nil {
		rc.Close()
		return nil, File{}, err
	}
	return readCloser{plain, rc}, pub, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func auditFileRead(u door.Use, f fileRow) audit.Event {
	return audit.Event{Actor: u.Actor, Action: "support.file_read", Subject: f.subject,
		Detail: map[string]string{"request": f.request, "file": f.id, "kind": f.kind, "purpose": u.Purpose}}
}
