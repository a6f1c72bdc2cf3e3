package capture

import "github.com/tripline/tripline/internal/rules"

// RulesFilter converts the rules' kernel filter into the capture's: the
// types it passes whole are left out (unfiltered). HostMntNS, which turns
// the host drop and the container terms on, is the caller's to set.
func RulesFilter(kf *rules.KernelFilter) *Filter {
	f := &Filter{HostDrop: kf.Host.Types, FailDrop: kf.FailDrop}
	for _, tf := range kf.Types {
		if tf.PassAll {
			continue
		}
		of := OpenFilter{Type: tf.Type}
		for _, tm := range tf.Terms {
			of.Terms = append(of.Terms, OpenTerm{
				Read:     tm.Access&rules.AccessRead != 0,
				Write:    tm.Access&rules.AccessWrite != 0,
				Success:  tm.Result == rules.ResultSuccess,
				Failure:  tm.Result == rules.ResultFailure,
				Errnos:   tm.Errnos,
				AnyPath:  tm.AnyPath,
				Prefixes: tm.Prefixes,
				Contains: tm.Contains,
				Names:    tm.Names,
			})
		}
		f.Open = append(f.Open, of)
	}
	for _, ff := range kf.Files {
		if ff.PassAll {
			continue
		}
		cf := FileFilter{Type: ff.Type}
		for _, tm := range ff.Terms {
			cf.Terms = append(cf.Terms, FileTerm{Container: tm.Container, FlagReg: tm.FlagReg, Flags: tm.Flags, Names: tm.Names})
		}
		f.File = append(f.File, cf)
	}
	for _, sf := range kf.Sock {
		if sf.PassAll {
			continue
		}
		cf := SockFilter{Type: sf.Type}
		for _, tm := range sf.Terms {
			ct := SockTerm{Families: uint8(tm.Families), Results: uint8(tm.Results), Container: tm.Container,
				Addrs: tm.Addrs, NotAddrs: tm.NotAddrs}
			if tm.Ports != nil {
				ct.Ports = make([]PortRange, len(tm.Ports))
				for i, p := range tm.Ports {
					ct.Ports[i] = PortRange{Lo: p.Lo, Hi: p.Hi}
				}
			}
			cf.Terms = append(cf.Terms, ct)
		}
		f.Sock = append(f.Sock, cf)
	}
	return f
}
