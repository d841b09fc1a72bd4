module hyperkern/test/go-client

go 1.19
