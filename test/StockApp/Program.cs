var builder = WebApplication.CreateBuilder(args);
if (OperatingSystem.IsLinux())
{
    builder.WebHost.UseWorkerProcesses();
}

var app = builder.Build();

app.MapGet("/", () => "Hello World!");

app.Run();
