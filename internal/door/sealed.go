package door

import (
	"database/sql/driver"
	"fmt"
)

// Sealed is a personal value as it is stored: ciphertext that only the
// door can open, with the key of its subject and category. Packages keep
// it in their rows (it is an sql.Scanner and a driver.Valuer) without
// ever seeing what it holds. The zero Sealed is "no value" and is stored
// as NULL.
type Sealed struct{ b []byte }

// IsZero reports whether s holds no value.
func (s Sealed) IsZero() bool { return len(s.b) == 0 }

// Value stores the ciphertext (NULL for no value).
func (s Sealed) Value() (driver.Value, error) {
	if len(s.b) == 0 {
		return nil, nil
	}
	return s.b, nil
}

// Scan reads stored ciphertext.
func (s *Sealed) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		s.b = nil
	case []byte:
		s.b = append([]byte(nil), v...)
	case string:
		s.b = []byte(v)
	default:
		return fmt.Errorf("door: a sealed value cannot be read from %T", src)
	}
	return nil
}

// String never shows the ciphertext: sealed values stay out of logs.
func (s Sealed) String() string {
	if s.IsZero() {
		return "sealed:none"
	}
	return "sealed"
}
