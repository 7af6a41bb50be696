# The seed's UDP greeting client (udp编程, 客户端), unchanged but for the
# server's address: python3 greet_udp_client.py [HOST:PORT] (or HOST PORT)
import sys
from socket import *
from peer_args import client_address
host, port = client_address(sys.argv)
s = socket(AF_INET, SOCK_DGRAM)
for data in ['Michael', 'Tracy', 'Sarah']:
    s.sendto(data.encode('utf-8'), (host, port))
    print(s.recv(1024).decode('utf-8'))
s.close()
