module example.com/croupier-sign

go 1.19
