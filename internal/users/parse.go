package users

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/tripline/tripline/internal/event"
)

// Sentinel errors.
var (
	ErrTooLarge = errors.New("users: file too large")
	ErrNotFile  = errors.New("users: not a regular file")
	// ErrNotEntered: the container's process still has the host's root.
	ErrNotEntered = errors.New("users: process not in its container's root yet")
)

// Bounds of what a database file may hold.
const (
	MaxFileSize = 4 << 20 // bytes of one passwd or group file
	MaxEntries  = 1 << 16 // entries kept from one file
	maxField    = 4096    // bytes of one name, home or shell
)

// DB is the users and groups of one root, by id. Immutable once built.
type DB struct {
	users  map[uint32]*event.User
	groups map[uint32]*event.Group
	// Skipped counts malformed lines ignored while parsing.
	Skipped int
}

// User returns the entry of uid, nil when unknown.
func (d *DB) User(uid uint32) *event.User {
	if d == nil {
		return nil
	}
	return d.users[uid]
}

// Group returns the entry of gid, nil when unknown.
func (d *DB) Group(gid uint32) *event.Group {
	if d == nil {
		return nil
	}
	return d.groups[gid]
}

// Len returns the number of users and groups.
func (d *DB) Len() (users, groups int) { return len(d.users), len(d.groups) }

// Parse builds a DB from the contents of a passwd and a group file in their
// standard formats (passwd(5), group(5)). Lines that are blank, comments,
// NIS compat entries (+/-) or malformed are skipped and counted; the first
// entry of an id wins, as getpwuid(3) returns it. It fails only on input
// over MaxFileSize.
func Parse(passwd, group []byte) (*DB, error) {
	if len(passwd) > MaxFileSize || len(group) > MaxFileSize {
		return nil, ErrTooLarge
	}
	d := &DB{users: map[uint32]*event.User{}, groups: map[uint32]*event.Group{}}
	eachLine(passwd, func(l []byte) {
		var f [7][]byte
		if !split(l, f[:]) || len(d.users) >= MaxEntries {
			d.Skipped++
			return
		}
		uid, ok := parseID(f[2])
		if !ok || !validName(f[0]) || !validText(f[5]) || !validText(f[6]) {
			d.Skipped++
			return
		}
		if _, dup := d.users[uid]; !dup {
			d.users[uid] = &event.User{Name: string(f[0]), HomeDir: string(f[5]), Shell: string(f[6])}
		}
	})
	eachLine(group, func(l []byte) {
		var f [4][]byte
		if !split(l, f[:]) || len(d.groups) >= MaxEntries {
			d.Skipped++
			return
		}
		gid, ok := parseID(f[2])
		if !ok || !validName(f[0]) {
			d.Skipped++
			return
		}
		if _, dup := d.groups[gid]; !dup {
			d.groups[gid] = &event.Group{Name: string(f[0])}
		}
	})
	return d, nil
}

// eachLine calls fn for each non-blank, non-comment, non-NIS line of b.
func eachLine(b []byte, fn func([]byte)) {
	for len(b) > 0 {
		l := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			l, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if len(l) == 0 || l[0] == '#' || l[0] == '+' || l[0] == '-' {
			continue
		}
		fn(l)
	}
}

// split cuts l into exactly len(f) colon-separated fields.
func split(l []byte, f [][]byte) bool {
	for i := range f {
		if i == len(f)-1 {
			if bytes.IndexByte(l, ':') >= 0 {
				return false
			}
			f[i] = l
			return true
		}
		j := bytes.IndexByte(l, ':')
		if j < 0 {
			return false
		}
		f[i], l = l[:j], l[j+1:]
	}
	return true
}

func parseID(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 32)
	return uint32(n), err == nil
}

// validName accepts what useradd and the other shadow-utils tools create,
// and more (any printable byte except ':' and space), but nothing that could
// disguise an alert: no control characters, no spaces.
func validName(b []byte) bool {
	if len(b) == 0 || len(b) > 256 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validText accepts a home directory or shell: bounded, no control
// characters.
func validText(b []byte) bool {
	if len(b) > maxField {
		return false
	}
	for _, c := range b {
		if c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// String summarizes d for logs.
func (d *DB) String() string {
	return fmt.Sprintf("%d users, %d groups, %d lines skipped", len(d.users), len(d.groups), d.Skipped)
}
