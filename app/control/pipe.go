package control

// pipeSDDL is the security descriptor, in SDDL, of the Windows control pipe of the user with SID
// userSID: the user owns it — which is what Remote checks before sending anything (see
// transport_windows.go) — and a protected DACL (P: nothing inherited) grants that user full access
// (GA) and nobody else anything. Not SYSTEM and not Administrators: the pipe hands out the user's
// tokens and no service needs it; an elevated process of the same user is still that user (same
// SID), so an administrator's own "Run as administrator" CLI gets in.
func pipeSDDL(userSID string) string {
	return "O:" + userSID + "D:P(A;;GA;;;" + userSID + ")"
}
