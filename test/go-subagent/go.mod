module hyperkern/test/go-subagent

go 1.19
