# The seed's TCP greeting server (tcp编程, 服务端), unchanged but for the
# port and the delay, which come from the command line so tests can use
# port 0 and no delay:
# python3 greet_tcp_server.py [HOST:PORT] [DELAY_SECONDS] (or a bare PORT)
import sys
from socket import *
import time, threading

from peer_args import server_address
address, rest = server_address(sys.argv)
delay = float(rest[0]) if rest else 1
# 建立socket
s = socket(AF_INET, SOCK_STREAM)
# 绑定端口
s.bind(address)
# 监听端口
s.listen(5)
print('等待连接。。。')
print('LISTENING %d' % s.getsockname()[1], flush=True)

# 处理连接
def tcplink(sock, addr):
    print('从%s:%s接受新连接' % addr)
    # 连接建立时首先向客户端发送信息
    sock.send('Welcome!'.encode('utf-8'))
    while True:
        # 接受数据
        data = sock.recv(1024)
        time.sleep(delay)
        # 如果数据为空或收到exit关键字子则不再接受数据
        if not data or data.decode('utf-8') == 'exit':
            break
        sock.send(('你好,%s' % data.decode('utf-8')).encode('utf-8'))
    # 关闭连接
    sock.close()
    print('来自%s:%s的连接已经关闭' % addr, flush=True)

while True:
    sock, addr = s.accept()
    t = threading.Thread(target=tcplink, args=(sock, addr))
    t.start()
