package rights

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	"steward/internal/registry"
	"steward/internal/store"
)

// Holder takes over the erasure of one registered table when the generic
// SQL is not right for it (a tombstone instead of a delete, keys destroyed
// instead of rows removed, a record kept with its free text cleared).
// Packages register holders with Service.Register; the engine still walks
// the registry, so a table is never skipped because nobody registered a
// holder for it. A holder that also implements Exporter exports the table
// too; otherwise the generic export reads it.
type Holder interface {
	// Erase erases what the scope covers in t, inside tx, and says what it
	// did. subjects lists the subject's id and every id merged into it. It
	// must be idempotent: a crashed erasure is simply run again.
	Erase(ctx context.Context, tx *sql.Tx, t registry.Table, subjects []string, sc Scope) (TableOutcome, error)
	// Left counts what the scope should have erased from t but is still
	// there; the request cannot complete while it is not zero.
	Left(ctx context.Context, q store.Q, t registry.Table, subjects []string, sc Scope) (int, error)
}

// Exporter exports a table in place of the generic export: each row is
// column name → value, for the columns the exporter chooses to show.
type Exporter interface {
	Export(ctx context.Context, q store.Q, t registry.Table, subjects []string) ([]map[string]any, error)
}

// Counter counts the subject's rows of a table in place of the generic
// count, for a holder whose Exporter shows the subject only some of them
// (a legal request they may not be told of yet): the inventory, the cover
// sheet and the privacy centre then say nothing of the rest. A counted
// table's rows all have its fixed Source.
type Counter interface {
	Count(ctx context.Context, q store.Q, t registry.Table, subjects []string) (int, error)
}

// Register makes h handle table. Register holders at start-up, before the
// first request.
func (s *Service) Register(table string, h Holder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holders[table] = h
}

func (s *Service) holder(table string) Holder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holders[table]
}

// File is one uploaded file of a subject, for the portability ZIP.
type File struct {
	// Name is the name the subject gave it; the engine makes it safe
	// before it goes into the ZIP.
	Name    string
	ModTime time.Time
	Open    func() (io.ReadCloser, error)
}

// FileSource lists a subject's uploaded files (the content package, once
// it exists, provides one).
type FileSource interface {
	Files(ctx context.Context, subjectID string) ([]File, error)
}

// AddFiles adds a source of uploaded files to portability exports.
func (s *Service) AddFiles(fs FileSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = append(s.files, fs)
}

func (s *Service) fileSources() []FileSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]FileSource(nil), s.files...)
}

// CheckBlobHolders refuses a registry in which a table names files in blob
// storage (registry.Column.Blob) but no holder was registered for it: the
// generic erasure would delete its rows and leave their files behind. Call
// it once every holder is registered.
func (s *Service) CheckBlobHolders() error {
	for _, t := range s.reg.Tables() {
		if t.HasBlobs() && s.holder(t.Name) == nil {
			return fmt.Errorf("rights: %s names files in blob storage but no holder erases them (Service.Register)", t.Name)
		}
	}
	return nil
}
