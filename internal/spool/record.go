package spool

import (
	"encoding/binary"
	"hash/crc32"
)

// Record framing: magic(2) | payload length(4, LE) | CRC-32C of payload(4, LE) | payload,
// payload = sequence(8, LE) | priority(1) | data.
const (
	magic0     = 0x5b
	magic1     = 0xa7
	headerSize = 10
	metaSize   = 9
	// MaxRecord bounds one record's data.
	MaxRecord = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type parseResult uint8

const (
	parseOK      parseResult = iota
	parseShort               // need more bytes (torn tail)
	parseCorrupt             // bad magic, length or CRC
)

// appendRecord frames one record onto dst.
func appendRecord(dst []byte, seq uint64, prio uint8, data []byte) []byte {
	n := metaSize + len(data)
	start := len(dst)
	dst = append(dst, magic0, magic1, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, prio)
	dst = append(dst, data...)
	binary.LittleEndian.PutUint32(dst[start+2:], uint32(n))
	binary.LittleEndian.PutUint32(dst[start+6:], crc32.Checksum(dst[start+headerSize:], castagnoli))
	return dst
}

// parseRecord decodes the record at the start of b. data aliases b.
func parseRecord(b []byte) (seq uint64, prio uint8, data []byte, n int, res parseResult) {
	if len(b) < headerSize {
		return 0, 0, nil, 0, parseShort
	}
	if b[0] != magic0 || b[1] != magic1 {
		return 0, 0, nil, 0, parseCorrupt
	}
	plen := binary.LittleEndian.Uint32(b[2:])
	if plen < metaSize || plen > metaSize+MaxRecord {
		return 0, 0, nil, 0, parseCorrupt
	}
	if uint64(len(b)-headerSize) < uint64(plen) {
		return 0, 0, nil, 0, parseShort
	}
	payload := b[headerSize : headerSize+int(plen)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[6:]) {
		return 0, 0, nil, 0, parseCorrupt
	}
	if payload[8] > 7 {
		return 0, 0, nil, 0, parseCorrupt
	}
	return binary.LittleEndian.Uint64(payload), payload[8], payload[metaSize:], headerSize + int(plen), parseOK
}

// resync returns the offset of the next valid record in b after a corrupt
// one at b[0], or len(b) when there is none.
func resync(b []byte) int {
	for i := 1; i < len(b); i++ {
		if b[i] != magic0 {
			continue
		}
		if _, _, _, _, res := parseRecord(b[i:]); res == parseOK {
			return i
		}
	}
	return len(b)
}

// scan walks every record in b, calling fn for valid ones (fn may be nil).
// It returns the end of the last valid record and the number of corrupt
// regions skipped; a torn tail is not counted as corrupt (the caller
// truncates it).
func scan(b []byte, fn func(off int, seq uint64, prio uint8, data []byte)) (validEnd int, corrupt int) {
	off := 0
	for off < len(b) {
		seq, prio, data, n, res := parseRecord(b[off:])
		switch res {
		case parseOK:
			if fn != nil {
				fn(off, seq, prio, data)
			}
			off += n
			validEnd = off
		case parseShort:
			if skip := resync(b[off:]); off+skip < len(b) {
				corrupt++
				off += skip
				continue
			}
			return validEnd, corrupt
		case parseCorrupt:
			corrupt++
			off += resync(b[off:])
		}
	}
	return validEnd, corrupt
}
