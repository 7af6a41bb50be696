# The seed's TCP greeting client (tcp编程, 客户端), unchanged but for the
# server's address: python3 greet_tcp_client.py [HOST:PORT] (or HOST PORT)
import sys
from socket import *

from peer_args import client_address
host, port = client_address(sys.argv)
s = socket(AF_INET, SOCK_STREAM)
s.connect((host, port))
print(s.recv(1024).decode('utf-8'))
for data in ['Michael', 'Tracy', 'Sarah']:
    s.send(data.encode('utf-8'))
    print(s.recv(1024).decode('utf-8'))

s.send('exit'.encode('utf-8'))
s.close()
