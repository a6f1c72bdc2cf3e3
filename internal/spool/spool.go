package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Lanes is the number of priorities (Falco's eight).
const Lanes = 8

// Errors.
var (
	ErrFull     = errors.New("spool: full, record dropped")
	ErrTooLarge = errors.New("spool: record too large")
	ErrClosed   = errors.New("spool: closed")
)

// Config configures a Spool.
type Config struct {
	// Dir holds the segment files; created if missing. Required.
	Dir string
	// MaxBytes bounds the total size of the segment files. Default 256 MiB.
	MaxBytes int64
	// SegmentBytes is the size at which a lane starts a new segment, and so
	// the granularity of dropping. Default MaxBytes/32 within [4 KiB, 8 MiB].
	SegmentBytes int64
	// SyncEvery fsyncs a lane after this many appends. Default 256.
	SyncEvery int
}

// Record is one spooled record. Data is owned by the caller.
type Record struct {
	Seq      uint64
	Priority uint8
	Data     []byte

	seg uint64
	end int64
}

// Stats are the spool counters.
type Stats struct {
	Bytes     int64  // bytes on disk
	Pending   uint64 // records not yet acknowledged
	Appended  uint64
	Delivered uint64 // acknowledged
	Dropped   uint64 // records lost to the size bound
	Corrupt   uint64 // corrupt regions skipped
}

type pos struct {
	seg uint64
	off int64
}

type segment struct {
	id   uint64
	size int64
	f    *os.File
}

type lane struct {
	prio     uint8
	segs     []*segment // ascending id; the last one takes appends
	read     pos
	ack      pos
	head     *Record
	unsynced int
	nextID   uint64
}

// Spool is a bounded on-disk FIFO. Safe for concurrent use.
type Spool struct {
	cfg Config

	mu          sync.Mutex
	lanes       [Lanes]*lane
	seq         uint64
	stats       Stats
	cursorDirty bool
	closed      bool
	buf         []byte
	notify      chan struct{}
}

// Open opens (or creates) the spool in cfg.Dir and recovers its state:
// torn tails are truncated, corrupt records counted, the read position set
// to the persisted acknowledged position.
func Open(cfg Config) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("spool: Config.Dir is required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 256 << 20
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = min(max(cfg.MaxBytes/32, 4<<10), 8<<20)
	}
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = 256
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: creating %s: %w", cfg.Dir, err)
	}
	s := &Spool{cfg: cfg, notify: make(chan struct{}, 1)}
	for i := range s.lanes {
		s.lanes[i] = &lane{prio: uint8(i), nextID: 1}
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *Spool) segPath(prio uint8, id uint64) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%d-%016x.seg", prio, id))
}

func (s *Spool) recover() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: reading %s: %w", s.cfg.Dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".seg") || len(name) != len("0-0123456789abcdef.seg") || name[1] != '-' {
			continue
		}
		p := name[0] - '0'
		id, err := strconv.ParseUint(name[2:18], 16, 64)
		if p >= Lanes || err != nil {
			continue
		}
		l := s.lanes[p]
		l.segs = append(l.segs, &segment{id: id})
		l.nextID = max(l.nextID, id+1)
	}
	cur := s.readCursor()
	for _, l := range s.lanes {
		slices.SortFunc(l.segs, func(a, b *segment) int { return cmpU64(a.id, b.id) })
		l.ack = cur[l.prio]
		var alive []*segment
		for i, sg := range l.segs {
			f, err := os.OpenFile(s.segPath(l.prio, sg.id), os.O_RDWR, 0o600)
			if err != nil {
				return fmt.Errorf("spool: opening segment: %w", err)
			}
			sg.f = f
			data, err := io.ReadAll(f)
			if err != nil {
				return fmt.Errorf("spool: reading segment %s: %w", f.Name(), err)
			}
			// Corruption is counted when the records are read, not here.
			validEnd, _ := scan(data, func(off int, seq uint64, _ uint8, _ []byte) {
				s.seq = max(s.seq, seq+1)
				if sg.id > l.ack.seg || (sg.id == l.ack.seg && int64(off) >= l.ack.off) {
					s.stats.Pending++
				}
			})
			sg.size = int64(len(data))
			if i == len(l.segs)-1 && validEnd < len(data) {
				// Torn tail from a crash mid-write: cut it so appends continue cleanly.
				if err := f.Truncate(int64(validEnd)); err != nil {
					return fmt.Errorf("spool: truncating torn tail: %w", err)
				}
				sg.size = int64(validEnd)
			}
			if sg.id < l.ack.seg || (sg.id == l.ack.seg && sg.size <= l.ack.off && i < len(l.segs)-1) {
				f.Close() // fully delivered before the crash
				os.Remove(s.segPath(l.prio, sg.id))
				continue
			}
			if _, err := f.Seek(0, io.SeekEnd); err != nil {
				return err
			}
			alive = append(alive, sg)
			s.stats.Bytes += sg.size
		}
		l.segs = alive
		l.ack = s.clampPos(l, l.ack)
		l.read = l.ack
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// clampPos maps a position whose segment is gone onto the next live data.
func (s *Spool) clampPos(l *lane, p pos) pos {
	for _, sg := range l.segs {
		if sg.id == p.seg {
			return pos{p.seg, min(p.off, sg.size)}
		}
		if sg.id > p.seg {
			return pos{sg.id, 0}
		}
	}
	if n := len(l.segs); n > 0 {
		last := l.segs[n-1]
		return pos{last.id, last.size}
	}
	return pos{l.nextID, 0}
}

const cursorSize = Lanes*16 + 4

func (s *Spool) readCursor() [Lanes]pos {
	var cur [Lanes]pos
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, "cursor"))
	if err != nil || len(b) != cursorSize || crc32.Checksum(b[:cursorSize-4], castagnoli) != binary.LittleEndian.Uint32(b[cursorSize-4:]) {
		if err == nil {
			s.stats.Corrupt++ // unreadable cursor: replay everything (dedupe hides it)
		}
		return cur
	}
	for i := range cur {
		cur[i] = pos{binary.LittleEndian.Uint64(b[i*16:]), int64(binary.LittleEndian.Uint64(b[i*16+8:]))}
	}
	return cur
}

func (s *Spool) writeCursorLocked() error {
	b := make([]byte, 0, cursorSize)
	for _, l := range s.lanes {
		b = binary.LittleEndian.AppendUint64(b, l.ack.seg)
		b = binary.LittleEndian.AppendUint64(b, uint64(l.ack.off))
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(s.cfg.Dir, "cursor.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: writing cursor: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.cfg.Dir, "cursor"))
	}
	if err != nil {
		return fmt.Errorf("spool: writing cursor: %w", err)
	}
	s.cursorDirty = false
	return nil
}

// Notify returns a channel that receives a value after appends.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Append stores data at priority prio (0..7; larger values are clamped to 7)
// and returns how many older records were dropped to make room. It returns
// ErrFull (and counts the loss) when data is less severe than everything
// stored and there is no room.
func (s *Spool) Append(prio uint8, data []byte) (dropped int, err error) {
	if len(data) > MaxRecord {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	prio = min(prio, Lanes-1)
	size := int64(headerSize + metaSize + len(data))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if size > s.cfg.MaxBytes {
		s.stats.Dropped++
		return 0, fmt.Errorf("%w: record larger than the spool", ErrFull)
	}
	for s.stats.Bytes+size > s.cfg.MaxBytes {
		if s.reclaimLocked() {
			continue
		}
		n, ok, err := s.evictLocked(prio)
		if err != nil {
			return dropped, err
		}
		if !ok {
			s.stats.Dropped++
			return dropped, ErrFull
		}
		dropped += n
	}
	l := s.lanes[prio]
	sg, err := s.activeLocked(l, size)
	if err != nil {
		return dropped, err
	}
	s.buf = appendRecord(s.buf[:0], s.seq, prio, data)
	if _, err := sg.f.Write(s.buf); err != nil {
		// Partial writes are cut on the next open; keep the size honest now.
		if st, serr := sg.f.Stat(); serr == nil {
			s.stats.Bytes += st.Size() - sg.size
			sg.size = st.Size()
		}
		return dropped, fmt.Errorf("spool: append: %w", err)
	}
	s.seq++
	sg.size += size
	s.stats.Bytes += size
	s.stats.Appended++
	s.stats.Pending++
	l.unsynced++
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if l.unsynced >= s.cfg.SyncEvery {
		l.unsynced = 0
		// fsync without the lock so that readers are not stalled by the disk.
		f := sg.f
		s.mu.Unlock()
		err := f.Sync()
		s.mu.Lock()
		if err != nil && !errors.Is(err, os.ErrClosed) { // closed: the segment was dropped meanwhile
			return dropped, fmt.Errorf("spool: fsync: %w", err)
		}
	}
	return dropped, nil
}

// activeLocked returns the lane's append segment, starting a new one when
// the current one would grow past SegmentBytes.
func (s *Spool) activeLocked(l *lane, size int64) (*segment, error) {
	if n := len(l.segs); n > 0 {
		if sg := l.segs[n-1]; sg.size == 0 || sg.size+size <= s.cfg.SegmentBytes {
			return sg, nil
		}
	}
	return s.newSegmentLocked(l)
}

func (s *Spool) newSegmentLocked(l *lane) (*segment, error) {
	if n := len(l.segs); n > 0 && l.unsynced > 0 {
		l.unsynced = 0
		if err := l.segs[n-1].f.Sync(); err != nil {
			return nil, fmt.Errorf("spool: fsync: %w", err)
		}
	}
	id := l.nextID
	f, err := os.OpenFile(s.segPath(l.prio, id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: new segment: %w", err)
	}
	l.nextID++
	sg := &segment{id: id, f: f}
	l.segs = append(l.segs, sg)
	return sg, nil
}

// reclaimLocked frees one fully acknowledged segment; it reports whether
// it freed anything.
func (s *Spool) reclaimLocked() bool {
	for _, l := range s.lanes {
		if len(l.segs) == 0 {
			continue
		}
		sg := l.segs[0]
		if sg.size == 0 || l.ack.seg != sg.id || l.ack.off < sg.size {
			continue
		}
		if len(l.segs) == 1 {
			// The append segment itself is fully delivered: move appends to a
			// fresh one so the old can go without rewriting positions.
			if _, err := s.newSegmentLocked(l); err != nil {
				return false
			}
		}
		s.removeFirstLocked(l)
		return true
	}
	return false
}

// evictLocked deletes the oldest segment of the least severe lane that is
// not more severe than prio.
func (s *Spool) evictLocked(prio uint8) (int, bool, error) {
	for p := Lanes - 1; p >= int(prio); p-- {
		l := s.lanes[p]
		if len(l.segs) == 0 || (len(l.segs) == 1 && l.segs[0].size == 0) {
			continue
		}
		sg := l.segs[0]
		if len(l.segs) == 1 {
			if _, err := s.newSegmentLocked(l); err != nil {
				return 0, false, err
			}
		}
		// Count the undelivered records being lost.
		from := int64(0)
		if l.ack.seg == sg.id {
			from = l.ack.off
		}
		n := 0
		if from < sg.size {
			data := make([]byte, sg.size-from)
			if _, err := sg.f.ReadAt(data, from); err == nil || errors.Is(err, io.EOF) {
				scan(data, func(int, uint64, uint8, []byte) { n++ })
			}
		}
		s.removeFirstLocked(l)
		s.stats.Dropped += uint64(n)
		s.stats.Pending -= min(uint64(n), s.stats.Pending)
		return n, true, nil
	}
	return 0, false, nil
}

func (s *Spool) removeFirstLocked(l *lane) {
	sg := l.segs[0]
	sg.f.Close()
	os.Remove(s.segPath(l.prio, sg.id))
	s.stats.Bytes -= sg.size
	l.segs = l.segs[1:]
	if l.ack.seg <= sg.id {
		l.ack = s.clampPos(l, l.ack)
		s.cursorDirty = true
	}
	if l.read.seg <= sg.id {
		l.read = s.clampPos(l, l.read)
	}
	if l.head != nil && l.head.seg == sg.id {
		l.head = nil
	}
}

// Next returns the oldest unread record, or ok=false when all are read.
func (s *Spool) Next() (r Record, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Record{}, false, ErrClosed
	}
	var best *lane
	for _, l := range s.lanes {
		if l.head == nil {
			if err := s.loadHeadLocked(l); err != nil {
				return Record{}, false, err
			}
		}
		if l.head != nil && (best == nil || l.head.Seq < best.head.Seq) {
			best = l
		}
	}
	if best == nil {
		return Record{}, false, nil
	}
	r = *best.head
	best.head = nil
	best.read = pos{r.seg, r.end}
	return r, true, nil
}

func (s *Spool) segByID(l *lane, id uint64) *segment {
	for _, sg := range l.segs {
		if sg.id == id {
			return sg
		}
	}
	return nil
}

// loadHeadLocked decodes the record at the lane's read position, skipping
// corrupt regions and crossing into the next segment at the end of one.
func (s *Spool) loadHeadLocked(l *lane) error {
	for {
		l.read = s.clampPos(l, l.read)
		sg := s.segByID(l, l.read.seg)
		if sg == nil {
			return nil
		}
		if l.read.off >= sg.size {
			if sg == l.segs[len(l.segs)-1] {
				return nil // caught up
			}
			l.read = pos{sg.id + 1, 0} // clampPos moves to the next live segment
			continue
		}
		var hdr [headerSize]byte
		rest := sg.size - l.read.off
		if rest >= headerSize {
			if _, err := sg.f.ReadAt(hdr[:], l.read.off); err != nil {
				return fmt.Errorf("spool: read: %w", err)
			}
			plen := int64(binary.LittleEndian.Uint32(hdr[2:]))
			if hdr[0] == magic0 && hdr[1] == magic1 && plen >= metaSize && plen <= metaSize+MaxRecord && headerSize+plen <= rest {
				b := make([]byte, headerSize+plen)
				if _, err := sg.f.ReadAt(b, l.read.off); err != nil {
					return fmt.Errorf("spool: read: %w", err)
				}
				if seq, prio, data, n, res := parseRecord(b); res == parseOK {
					l.head = &Record{Seq: seq, Priority: prio, Data: data, seg: sg.id, end: l.read.off + int64(n)}
					return nil
				}
			}
		}
		// Corrupt: find the next valid record in the rest of the segment.
		s.stats.Corrupt++
		b := make([]byte, rest)
		if _, err := sg.f.ReadAt(b, l.read.off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("spool: read: %w", err)
		}
		l.read.off += int64(resync(b))
	}
}

// Ack marks r, and every record read before it, delivered.
func (s *Spool) Ack(r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lanes[r.Priority]
	if r.seg < l.ack.seg || (r.seg == l.ack.seg && r.end <= l.ack.off) {
		return // already acknowledged (or dropped meanwhile)
	}
	l.ack = pos{r.seg, r.end}
	s.cursorDirty = true
	s.stats.Delivered++
	if s.stats.Pending > 0 {
		s.stats.Pending--
	}
	// Sealed segments behind the cursor are done.
	for len(l.segs) > 1 && (l.segs[0].id < l.ack.seg || (l.segs[0].id == l.ack.seg && l.ack.off >= l.segs[0].size)) {
		s.removeFirstLocked(l)
	}
}

// Rewind makes Next start again at the oldest unacknowledged record.
func (s *Spool) Rewind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lanes {
		l.read = l.ack
		l.head = nil
	}
}

// Sync fsyncs appended data and persists the acknowledged position.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.syncLocked()
}

func (s *Spool) syncLocked() error {
	for _, l := range s.lanes {
		if l.unsynced > 0 && len(l.segs) > 0 {
			l.unsynced = 0
			if err := l.segs[len(l.segs)-1].f.Sync(); err != nil {
				return fmt.Errorf("spool: fsync: %w", err)
			}
		}
	}
	if s.cursorDirty {
		return s.writeCursorLocked()
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close syncs and closes the files. Idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	err := s.syncLocked()
	s.closed = true
	s.closeFiles()
	return err
}

func (s *Spool) closeFiles() {
	for _, l := range s.lanes {
		for _, sg := range l.segs {
			if sg.f != nil {
				sg.f.Close()
			}
		}
	}
}
