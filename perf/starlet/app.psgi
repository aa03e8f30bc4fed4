# The seed's hello world (../shared/seeds/000_*.txt): parses ?foo, answers a 12-byte text/plain body behind a no-op access log.
use Plack::Builder;
use Plack::Request;
my $length = 12;
my $body = 'x' x $length;
builder {
    enable 'AccessLog', logger => sub { };
    sub {
        my $env = shift;
        my $req = Plack::Request->new($env);
        my @params = $req->param('foo');
        [200, ['Content-Type' => 'text/plain', 'Content-Length' => $length], [$body]];
    };
};
